"""Presign benchmark: botocore's generate_presigned_url vs stores.sigv4.S3Presigner, per URL.

Both sign the same varied keys (mostly ASCII segment paths, some with spaces/unicode) against the
live clock; the botocore client is created once, outside the timed loop. Each side runs several
rounds and the best round is reported (the machine is shared), next to the median round. Before
timing, a sample of URLs is compared byte for byte at a frozen instant, so both sides do the same work.

Usage: python bench/presign.py [--urls 20000] [--boto-urls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
import uuid
from pathlib import Path
from unittest import mock

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stores.sigv4 import S3Presigner

TARGET_US = 10.0
TARGET_RATIO = 15.0
SCENARIOS = [  # (name, endpoint_url, region, addressing style, session token)
    ("aws virtual+token", None, "eu-west-2", "virtual", "FQoGZXIvYXdzEXAMPLE/TOKEN+=="),
    ("minio path", "http://127.0.0.1:9000", "us-east-1", "path", None),
]


def varied_keys(count: int) -> list[str]:
    flows = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(50)]
    keys = []
    for i in range(count):
        flow = flows[i % len(flows)]
        if i % 10 == 0:
            keys.append(f"flows/{flow}/média {i}/日本語 🎬.ts")
        elif i % 10 == 1:
            keys.append(f"flows/{flow}/segments/{i:08d}+extra=1&x.ts")
        else:
            keys.append(f"flows/{flow}/segments/{i:08d}.ts")
    return keys


def per_url_us(sign: object, keys: list[str], rounds: int) -> tuple[float, float]:
    """(best, median) over rounds of the mean µs per URL."""
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for key in keys:
            sign(key)  # type: ignore[operator]
        results.append((time.perf_counter() - started) / len(keys) * 1e6)
    return min(results), statistics.median(results)


def main(args: argparse.Namespace) -> None:
    keys = varied_keys(args.urls)
    print(f"{'scenario':<18} {'botocore':>14} {'ours':>14} {'ratio':>7}   targets (<= {TARGET_US:.0f} µs, >= {TARGET_RATIO:.0f}x)")
    for name, endpoint_url, region, style, token in SCENARIOS:
        client = boto3.session.Session().client(
            "s3", region_name=region, endpoint_url=endpoint_url, aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", aws_session_token=token,
            config=Config(signature_version="s3v4", request_checksum_calculation="when_required",
                          response_checksum_validation="when_required", s3={"addressing_style": style}))
        signer = S3Presigner(endpoint_url=endpoint_url, region=region, bucket="tams-media",
                             access_key="AKIDEXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                             session_token=token, addressing_style=style)

        def boto(key: str, client: object = client) -> str:
            return client.generate_presigned_url(  # type: ignore[attr-defined]
                "get_object", Params={"Bucket": "tams-media", "Key": key}, ExpiresIn=3600)

        def ours(key: str, signer: S3Presigner = signer) -> str:
            return signer.presign("GET", key, 3600)

        instant = dt.datetime(2024, 5, 6, 7, 8, 9)
        with mock.patch("botocore.auth.get_current_datetime", return_value=instant):
            sample = keys[:200]
            identical = all(boto(k) == signer.presign("GET", k, 3600, now=instant) for k in sample)
        boto_best, boto_median = per_url_us(boto, keys[: args.boto_urls], args.rounds)
        ours_best, ours_median = per_url_us(ours, keys, args.rounds)
        ratio = boto_best / ours_best
        met = "met" if ours_best <= TARGET_US and ratio >= TARGET_RATIO else "NOT met"
        print(f"{name:<18} {boto_best:9.1f} µs/url {ours_best:9.2f} µs/url {ratio:6.1f}x   {met}"
              f"  (medians {boto_median:.1f} / {ours_median:.2f} µs; "
              f"{min(args.boto_urls, len(keys)):,} / {len(keys):,} URLs x {args.rounds}; "
              f"identical on {len(sample)} keys: {'yes' if identical else 'NO'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=int, default=20_000)
    parser.add_argument("--boto-urls", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args())
