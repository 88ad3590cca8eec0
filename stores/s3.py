"""Media in S3-compatible object storage (AWS S3, VAST S3, MinIO), on aioboto3.

Object keys are ``{prefix}/{object id}``: independent of flows and timeranges, so one object can be
used by many flows. Uploads carry ``Content-MD5``, the one integrity check every S3-compatible
store accepts; the newer flexible checksums (CRC32 and friends, botocore's default since 1.36) are
only sent when an operation requires them, because several S3-compatible stores reject them.

Failures that may pass (timeouts, refused connections, 5xx, throttling) surface as
`MediaUnavailable` after botocore's own retries, so the caller can back off and retry; a missing
object is `MediaNotFound`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stores.errors import MediaNotFound, MediaUnavailable
from stores.media import MediaInfo, MediaStore, copy_through

CHUNK_SIZE = 256 * 1024
# Bodies above this are hashed in a thread (hashlib releases the GIL), smaller ones inline.
_HASH_INLINE_MAX = 64 * 1024
_ATTEMPTS = 3
# Time allowed per byte sent, on top of the fixed deadline: 1 MiB/s at the least.
_SECONDS_PER_BYTE = 1 / (1024 * 1024)
_MISSING = {"NoSuchKey", "404", "NotFound"}
_TRANSIENT = {"SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError", "Throttling", "503", "500"}


def client_config(*, addressing_style: str, timeout_s: float, max_pool: int = 64) -> Config:
    """The botocore configuration used for S3, shared by the store and the tests that compare presigned URLs."""
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": addressing_style},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"mode": "standard", "max_attempts": _ATTEMPTS},
        max_pool_connections=max_pool,
    )


def _checksum(head: dict[str, Any]) -> str | None:
    """The strongest checksum S3 reports for an object: a full-object checksum, else the ETag."""
    for algorithm in ("SHA256", "SHA1", "CRC64NVME", "CRC32C", "CRC32"):
        value = head.get(f"Checksum{algorithm}")
        if value and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            return f"{algorithm.lower()}:{value}"
    etag = (head.get("ETag") or "").strip('"')
    return f"etag:{etag}" if etag else None


class S3MediaStore:
    """Object bytes in one bucket under one key prefix."""

    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str = "us-east-1",
                 addressing_style: str = "auto", timeout_s: float = 10.0, concurrency: int = 32) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.region = region
        self._config = client_config(addressing_style=addressing_style, timeout_s=timeout_s, max_pool=concurrency * 2)
        # botocore's socket timeouts do not cover every wait (a server that accepts a connection and then
        # stops answering can hold a request for minutes), so each call also has an overall deadline.
        self._deadline_s = timeout_s * (_ATTEMPTS + 1)
        self._limit = asyncio.Semaphore(concurrency)
        self._stack = AsyncExitStack()
        self._client: Any = None

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def open(self) -> None:
        if self._client is not None:
            return
        session = aioboto3.Session()
        self._client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=self.endpoint_url, region_name=self.region, config=self._config))

    async def _call(self, operation: str, key: str, **params: Any) -> Any:
        if self._client is None:
            raise RuntimeError("S3MediaStore.open() was not awaited")
        deadline = self._deadline_s + len(params.get("Body", b"")) * _SECONDS_PER_BYTE
        try:
            async with self._limit, asyncio.timeout(deadline):
                return await getattr(self._client, operation)(Bucket=self.bucket, Key=self.object_key(key), **params)
        except TimeoutError:
            raise MediaUnavailable(f"S3 {operation} of {key!r} got no answer within {deadline:.0f} s") from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _MISSING:
                raise MediaNotFound(f"no object {key!r} in s3://{self.bucket}/{self.prefix}") from None
            if code in _TRANSIENT or status >= 500:
                raise MediaUnavailable(f"S3 {operation} of {key!r} failed: {code} {error.get('Message', '')}") from exc
            raise
        except BotoCoreError as exc:  # connection refused, timeouts, closed connections
            raise MediaUnavailable(f"S3 {operation} of {key!r} failed: {exc}") from exc

    async def put(self, key: str, data: bytes) -> MediaInfo:
        digest = hashlib.md5(data) if len(data) <= _HASH_INLINE_MAX else await asyncio.to_thread(hashlib.md5, data)
        await self._call("put_object", key, Body=data, ContentMD5=base64.b64encode(digest.digest()).decode())
        return MediaInfo(key=key, size=len(data), checksum=f"md5:{digest.hexdigest()}")

    async def put_many(self, items: list[tuple[str, bytes]]) -> list[MediaInfo]:
        """Upload concurrently (bounded by the store's concurrency); every upload is done when this returns."""
        last = dict(items)
        stored = await asyncio.gather(*(self.put(key, data) for key, data in last.items()))
        by_key = {info.key: info for info in stored}
        return [by_key[key] for key, _ in items]

    async def info(self, key: str) -> MediaInfo:
        head = await self._call("head_object", key, ChecksumMode="ENABLED")
        return MediaInfo(key=key, size=int(head["ContentLength"]), checksum=_checksum(head))

    async def info_many(self, keys: list[str]) -> dict[str, MediaInfo]:
        async def one(key: str) -> MediaInfo | None:
            try:
                return await self.info(key)
            except MediaNotFound:
                return None

        return {i.key: i for i in await asyncio.gather(*(one(k) for k in keys)) if i is not None}

    async def exists(self, key: str) -> bool:
        try:
            await self._call("head_object", key)
        except MediaNotFound:
            return False
        return True

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        if start < 0 or end < start:
            raise ValueError(f"invalid byte range [{start}, {end})")
        if start == end:
            return
        response = await self._call("get_object", key, Range=f"bytes={start}-{end - 1}")
        body = response["Body"]
        try:
            async for chunk in body.iter_chunks(CHUNK_SIZE):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await self._call("delete_object", key)

    async def copy_from(self, source: MediaStore, key: str) -> MediaInfo:
        """Server-side copy when the source is a bucket on the same endpoint, else through this process."""
        if isinstance(source, S3MediaStore) and source.endpoint_url == self.endpoint_url:
            await self._call("copy_object", key, CopySource={"Bucket": source.bucket, "Key": source.object_key(key)})
            return await self.info(key)
        return await copy_through(self, source, key)

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None
