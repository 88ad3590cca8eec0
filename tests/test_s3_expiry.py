"""Presigned S3 URLs from our signer against s3rver, which enforces expiry (moto does not)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stores.sigv4 import S3Presigner
from tests.s3rver_server import ACCESS_KEY, SECRET_KEY, S3rver

BUCKET = "tams-expiry"


@pytest.fixture(scope="module")
def s3rver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3rver]:
    server = S3rver.start(tmp_path_factory.mktemp("s3rver") / "data", BUCKET)
    try:
        yield server
    finally:
        server.stop()


def presigner(server: S3rver) -> S3Presigner:
    return S3Presigner(endpoint_url=server.endpoint, region="us-east-1", bucket=BUCKET, access_key=ACCESS_KEY,
                       secret_key=SECRET_KEY, addressing_style="path")


@pytest.mark.parametrize("key", ["plain", "with space/and slash", "unicode-é-日本", "reserved!'()*~+=&"])
def test_presigned_put_then_get_work_until_they_expire(s3rver: S3rver, key: str) -> None:
    signer = presigner(s3rver)
    put = httpx.put(signer.presign("PUT", key, 60, content_type="video/mp2t"), content=key.encode(),
                    headers={"content-type": "video/mp2t"})
    assert put.status_code == 200, put.text
    fresh = httpx.get(signer.presign("GET", key, 60))
    assert fresh.status_code == 200 and fresh.content == key.encode()

    expired = httpx.get(signer.presign("GET", key, 5, now=time.time() - 60))  # signed a minute ago for 5 s
    assert expired.status_code == 403
    assert "expired" in expired.text.lower()


def test_an_expired_upload_url_stores_nothing(s3rver: S3rver, tmp_path: Path) -> None:
    signer = presigner(s3rver)
    late = httpx.put(signer.presign("PUT", "late", 5, now=time.time() - 60), content=b"too late")
    assert late.status_code == 403
    assert httpx.get(signer.presign("GET", "late", 60)).status_code == 404
