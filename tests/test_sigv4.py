"""stores.sigv4 produces the very bytes botocore's generate_presigned_url produces.

botocore reads the clock once per signature through ``botocore.auth.get_current_datetime`` (a name
imported into botocore.auth from botocore.compat, returning a naive UTC datetime); patching that
one name freezes the signer without touching anything else in botocore or the stdlib.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from hypothesis import given, settings
from hypothesis import strategies as st

from stores.sigv4 import S3Presigner

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzE/Ab+c=d&e?f g%2F"  # reserved characters must be encoded once, as botocore does
INSTANT = dt.datetime(2024, 5, 6, 7, 8, 9)  # naive UTC, like botocore's own clock
OPERATIONS = {"GET": "get_object", "PUT": "put_object", "HEAD": "head_object", "DELETE": "delete_object"}

KEYS = [
    "plain.ts",
    "flows/3f1c2a4e-8b1d-4c1e-9f3a-0a1b2c3d4e5f/segments/000123.ts",
    "with space/and  two",
    "caf\u00e9/r\u00e9sum\u00e9.mp4",
    "\u65e5\u672c\u8a9e/\u30d5\u30a1\u30a4\u30eb.ts",
    "emoji/\U0001f3ac\U0001f44d\U0001f3fd.ts",
    "/leading-slash",
    "//double//slashes//",
    "trailing/",
    "~tilde+plus=equals&amp?question#hash%percent",
    "!bang'quote(paren)*star,comma;semi:colon@at$dollar",
    "[brackets]{braces}|pipe\\backslash^caret`tick\"dq<lt>gt",
    "already%20encoded%2Fslash",
    "./dot/../segments/.",
    "tab\there\nnewline\rcr\x7fdel\x01ctl",
    "\u00a0nbsp\u2028line-sep\ufeffbom\uffff",
]


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    """Keep the developer's AWS config/env (endpoints, profiles, regional flags) out of botocore."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            mp.setenv(name, "/dev/null")
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                     "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "AWS_USE_FIPS_ENDPOINT",
                     "AWS_USE_DUALSTACK_ENDPOINT", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                     "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def boto_url(aws_env: None) -> Callable[..., str]:
    """generate_presigned_url with the project's client config; clients are cached per config."""
    clients: dict[tuple[object, ...], object] = {}

    def url(*, endpoint_url: str | None, region: str, bucket: str, style: str, token: str | None,
            method: str, key: str, expires_in: int, content_type: str | None = None,
            checksum_calculation: str = "when_required") -> str:
        cache_key = (endpoint_url, region, style, token, checksum_calculation)
        if cache_key not in clients:
            clients[cache_key] = boto3.session.Session().client(
                "s3", region_name=region, endpoint_url=endpoint_url, aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY, aws_session_token=token,
                config=Config(signature_version="s3v4", request_checksum_calculation=checksum_calculation,
                              response_checksum_validation="when_required",
                              s3={"addressing_style": style}))
        params = {"Bucket": bucket, "Key": key}
        if content_type is not None:
            params["ContentType"] = content_type
        return clients[cache_key].generate_presigned_url(OPERATIONS[method], Params=params, ExpiresIn=expires_in)

    return url


@contextmanager
def frozen(instant: dt.datetime) -> Iterator[None]:
    with mock.patch("botocore.auth.get_current_datetime", return_value=instant):
        yield


def ours(*, endpoint_url: str | None, region: str, bucket: str, style: str, token: str | None,
         method: str, key: str, expires_in: int, content_type: str | None = None,
         now: dt.datetime = INSTANT) -> str:
    signer = S3Presigner(endpoint_url=endpoint_url, region=region, bucket=bucket, access_key=ACCESS_KEY,
                         secret_key=SECRET_KEY, session_token=token, addressing_style=style)
    return signer.presign(method, key, expires_in, content_type=content_type, now=now)


def test_patch_freezes_botocore(boto_url: Callable[..., str]) -> None:
    with frozen(INSTANT):
        url = boto_url(endpoint_url=None, region="eu-west-2", bucket="media", style="auto", token=None,
                       method="GET", key="k", expires_in=60)
    assert "X-Amz-Date=20240506T070809Z" in url and "%2F20240506%2Feu-west-2%2Fs3%2F" in url


def test_aws_documentation_example() -> None:
    """The presigned GET example of the S3 SigV4 query-auth documentation, independent of botocore."""
    signer = S3Presigner(endpoint_url=None, region="us-east-1", bucket="examplebucket",
                         access_key="AKIAIOSFODNN7EXAMPLE",
                         secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    url = signer.presign("GET", "test.txt", 86400, now=dt.datetime(2013, 5, 24, tzinfo=dt.UTC))
    assert url == (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-2"])
@pytest.mark.parametrize("endpoint_url", [None, "http://127.0.0.1:9000"])
@pytest.mark.parametrize("style", ["auto", "path", "virtual"])
@pytest.mark.parametrize("token", [None, TOKEN])
@pytest.mark.parametrize(("method", "content_type"), [("GET", None), ("PUT", None), ("PUT", "video/mp2t")])
def test_matches_botocore(boto_url: Callable[..., str], region: str, endpoint_url: str | None, style: str,
                          token: str | None, method: str, content_type: str | None) -> None:
    common = {"endpoint_url": endpoint_url, "region": region, "bucket": "tams-media", "style": style, "token": token,
              "method": method, "expires_in": 3600, "content_type": content_type}
    with frozen(INSTANT):
        expected = [boto_url(key=key, **common) for key in KEYS]
    assert [ours(key=key, **common) for key in KEYS] == expected


@pytest.mark.parametrize("endpoint_url", [None, "http://127.0.0.1:9000", "http://minio.local:9000/base",
                                          "https://s3.example.com:443/a/../b//c/", "http://[::1]:9000/",
                                          "https://S3.Example.COM:8443"])
@pytest.mark.parametrize("style", ["auto", "path", "virtual"])
def test_bucket_names_and_endpoints(boto_url: Callable[..., str], endpoint_url: str | None, style: str) -> None:
    """Which host/path botocore picks depends on the bucket name; cover each branch of its rules."""
    buckets = ["tams-media", "my.dotted.bucket", "Upper_Case", "UpperOnly", "ab", "192.168.1.1", "x" * 63]
    for region in ("us-east-1", "eu-west-2"):
        for bucket in buckets:
            common = {"endpoint_url": endpoint_url, "region": region, "bucket": bucket, "style": style, "token": None,
                      "method": "GET", "key": "a b/c", "expires_in": 900}
            with frozen(INSTANT):
                expected = boto_url(**common)
            assert ours(**common) == expected, (region, bucket)


@pytest.mark.parametrize("content_type", [
    "video/mp2t", "", "  text/plain;   charset=utf-8  ", "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded", "multipart/mixed; boundary=\"a b\"",
])
def test_put_content_type(boto_url: Callable[..., str], content_type: str) -> None:
    """botocore signs ContentType as a header (trimmed); only its own form default is dropped."""
    common = {"endpoint_url": "http://127.0.0.1:9000", "region": "eu-west-2", "bucket": "tams-media",
              "style": "path", "token": TOKEN, "method": "PUT", "key": "seg/1.ts", "expires_in": 600,
              "content_type": content_type}
    with frozen(INSTANT):
        expected = boto_url(**common)
    assert ours(**common) == expected
    signs_content_type = content_type != "application/x-www-form-urlencoded; charset=utf-8"
    assert ("X-Amz-SignedHeaders=content-type%3Bhost" in expected) is signs_content_type
    assert "Content-Type" not in expected and "content-type=" not in expected.lower()


@pytest.mark.parametrize("checksum_calculation", ["when_required", "when_supported"])
def test_checksum_setting_does_not_change_presigned_put(boto_url: Callable[..., str],
                                                         checksum_calculation: str) -> None:
    """Presigned requests never get a default checksum, whatever request_checksum_calculation says."""
    common = {"endpoint_url": None, "region": "eu-west-2", "bucket": "tams-media", "style": "virtual", "token": None,
              "method": "PUT", "key": "seg/1.ts", "expires_in": 600, "content_type": "video/mp2t"}
    with frozen(INSTANT):
        expected = boto_url(checksum_calculation=checksum_calculation, **common)
    assert "checksum" not in expected.lower()
    assert ours(**common) == expected


def test_other_methods_and_expiries(boto_url: Callable[..., str]) -> None:
    for method in ("HEAD", "DELETE"):
        for expires_in in (1, 59, 604800):
            common = {"endpoint_url": None, "region": "eu-west-2", "bucket": "tams-media", "style": "auto",
                      "token": TOKEN, "method": method, "key": "x/y z", "expires_in": expires_in}
            with frozen(INSTANT):
                expected = boto_url(**common)
            assert ours(**common) == expected


keys_s3_can_store = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=300).filter(
    lambda key: len(key.encode("utf-8")) <= 1024)  # surrogates cannot be UTF-8 encoded; S3 caps keys at 1 KiB


@settings(max_examples=300, deadline=None)
@given(key=keys_s3_can_store,
       config=st.sampled_from([(None, "us-east-1", "auto", None), (None, "eu-west-2", "virtual", TOKEN),
                               ("http://127.0.0.1:9000", "eu-west-2", "path", TOKEN),
                               ("http://minio.local:9000", "us-east-1", "virtual", None)]),
       method=st.sampled_from(["GET", "PUT"]),
       second=st.integers(0, 2**31 - 1))
def test_arbitrary_keys_match_botocore(boto_url: Callable[..., str], key: str,
                                        config: tuple[str | None, str, str, str | None], method: str,
                                        second: int) -> None:
    endpoint_url, region, style, token = config
    instant = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=second)
    common = {"endpoint_url": endpoint_url, "region": region, "bucket": "tams-media", "style": style, "token": token,
              "method": method, "key": key, "expires_in": 3600}
    with frozen(instant):
        expected = boto_url(**common)
    assert ours(now=instant, **common) == expected


def test_now_accepts_epoch_and_aware_datetimes() -> None:
    signer = S3Presigner(endpoint_url=None, region="eu-west-2", bucket="tams-media",
                         access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    epoch = INSTANT.replace(tzinfo=dt.UTC).timestamp()
    paris = INSTANT.replace(tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=2)))
    urls = {signer.presign("GET", "k", 60, now=now) for now in (INSTANT, epoch, epoch + 0.999, paris)}
    assert len(urls) == 1


def test_signing_key_derived_once_per_day(boto_url: Callable[..., str]) -> None:
    signer = S3Presigner(endpoint_url="http://127.0.0.1:9000", region="eu-west-2", bucket="tams-media",
                         access_key=ACCESS_KEY, secret_key=SECRET_KEY, session_token=TOKEN)
    derive = mock.Mock(wraps=signer._derive_signing_key)
    with mock.patch.object(signer, "_derive_signing_key", derive):
        day = dt.datetime(2024, 5, 6)
        for second in range(0, 86400, 97):  # ~900 URLs spread over one UTC day
            signer.presign("GET", f"k/{second}", 60, now=day + dt.timedelta(seconds=second))
        assert derive.call_count == 1
        assert derive.call_args == mock.call("20240506")
        key_day_one = signer.signing_key("20240506")

        just_before, midnight = dt.datetime(2024, 5, 6, 23, 59, 59), dt.datetime(2024, 5, 7)
        urls = [signer.presign("GET", "k", 60, now=instant) for instant in (just_before, midnight)]
        assert derive.call_count == 2 and derive.call_args == mock.call("20240507")
        assert signer.signing_key("20240507") != key_day_one
        assert derive.call_count == 2  # asking again for the same day hits the cache

    common = {"endpoint_url": "http://127.0.0.1:9000", "region": "eu-west-2", "bucket": "tams-media",
              "style": "auto", "token": TOKEN, "method": "GET", "key": "k", "expires_in": 60}
    for instant, url in zip((just_before, midnight), urls, strict=True):
        with frozen(instant):
            assert url == boto_url(**common)


@pytest.mark.parametrize("kwargs", [
    {"addressing_style": "sideways"},
    {"bucket": "zone--x-s3"},
    {"bucket": "arn:aws:s3:us-east-1:123456789012:accesspoint/ap"},
    {"bucket": "bad bucket"},
    {"region": "cn-north-1"},
])
def test_rejects_what_it_cannot_match(kwargs: dict[str, str]) -> None:
    args = {"endpoint_url": None, "region": "eu-west-2", "bucket": "tams-media", "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY} | kwargs
    with pytest.raises(ValueError):
        S3Presigner(**args)


@pytest.mark.parametrize("expires_in", [0, -1, 604801, 1.5, True])
def test_rejects_bad_expiry(expires_in: object) -> None:
    signer = S3Presigner(endpoint_url=None, region="eu-west-2", bucket="tams-media",
                         access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    with pytest.raises(ValueError):
        signer.presign("GET", "k", expires_in)  # type: ignore[arg-type]
