"""Storage backends: where controlled media objects live, and how clients are sent to them.

A backend pairs a media store (bytes) with a URL issuer (presigned GET/PUT URLs). The default
backend comes from `TAMS_MEDIA_URL` and the `TAMS_S3_*` settings; `TAMS_EXTRA_STORAGE_BACKENDS`
adds more. Every process derives the same backend ids from the same configuration.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from stores.errors import NotFound
from stores.localdir import LocalMediaStore
from stores.media import MediaStore
from stores.s3 import S3MediaStore
from stores.signing import UrlSigner
from stores.sigv4 import S3Presigner, quote_key, resolve_bucket_url
from tams.settings import BackendSpec, Settings


class UnsupportedStoreUrl(ValueError):
    """The URL names a backend this build does not provide."""


class UrlIssuer(Protocol):
    """Issues the URLs clients use to read and write one backend's objects."""

    offers_plain_urls: bool  # whether `plain_url` gives URLs

    def sign(self, method: str, key: str, now: int, lifetime_s: int, content_type: str | None = None) -> str:
        """A presigned URL for `method` on `key`, valid `lifetime_s` seconds from the unix time `now`."""
        ...

    def plain_url(self, key: str) -> str | None:
        """A URL without a signature, when the backend is configured to be read that way."""
        ...


class LocalUrls:
    """URLs served by the API's own media routes, signed with an HMAC (`stores.signing`)."""

    offers_plain_urls = False

    def __init__(self, signer: UrlSigner, base_url: str) -> None:
        self.signer = signer
        self.base_url = base_url

    def sign(self, method: str, key: str, now: int, lifetime_s: int, content_type: str | None = None) -> str:
        return self.signer.sign_url(self.base_url, method, key, now + lifetime_s)

    def plain_url(self, key: str) -> str | None:
        return None


class S3Urls:
    """SigV4 query-presigned URLs from our own signer (see `stores.sigv4`), with credentials kept fresh.

    Credentials come from botocore's standard chain (environment, profile, instance role); temporary
    ones refresh, so the presigner is rebuilt whenever the frozen credentials change.
    """

    def __init__(self, store: S3MediaStore, addressing_style: str, plain_urls: bool) -> None:
        import botocore.session

        self._store = store
        self._style = addressing_style
        self._credentials = botocore.session.Session().get_credentials()
        if self._credentials is None:
            raise UnsupportedStoreUrl("no AWS credentials found (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile)")
        self._frozen: Any = None
        self._presigner: S3Presigner | None = None
        self._bucket_url = resolve_bucket_url(store.endpoint_url, store.region, store.bucket, addressing_style)
        self.offers_plain_urls = plain_urls

    def _current(self) -> S3Presigner:
        frozen = self._credentials.get_frozen_credentials()
        if self._presigner is None or frozen != self._frozen:
            self._presigner = S3Presigner(
                endpoint_url=self._store.endpoint_url, region=self._store.region, bucket=self._store.bucket,
                access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token,
                addressing_style=self._style)  # type: ignore[arg-type]
            self._frozen = frozen
        return self._presigner

    def sign(self, method: str, key: str, now: int, lifetime_s: int, content_type: str | None = None) -> str:
        return self._current().presign(method, self._store.object_key(key), lifetime_s, content_type=content_type,
                                       now=now)

    def plain_url(self, key: str) -> str | None:
        if not self.offers_plain_urls:
            return None
        return f"{self._bucket_url.rstrip('/')}/{quote_key(self._store.object_key(key))}"


@dataclass(frozen=True, slots=True)
class StorageBackend:
    id: str
    label: str
    provider: str
    store_product: str
    media: MediaStore
    urls: UrlIssuer
    default: bool = False
    region: str | None = None
    tags: dict[str, str | list[str]] = field(default_factory=dict)
    store_type: str = "http_object_store"
    local_route: str | None = None  # path prefix of the API routes serving a local backend's URLs

    def describe(self) -> dict[str, Any]:
        """The backend as `GET /service/storage-backends` lists it."""
        body: dict[str, Any] = {"id": self.id, "store_type": self.store_type, "provider": self.provider,
                                "store_product": self.store_product, "label": self.label,
                                "default_storage": self.default, "tags": self.tags}
        if self.region:
            body["region"] = self.region
        return body


class StorageBackends:
    """The configured backends; exactly one is the default."""

    def __init__(self, backends: list[StorageBackend]) -> None:
        self._by_id = {b.id: b for b in backends}
        if len(self._by_id) != len(backends):
            raise ValueError("two storage backends have the same media URL")
        labels = [b.label for b in backends]
        if len(set(labels)) != len(labels):
            raise ValueError(f"storage backend labels must be distinct, got {labels}")
        self.default = next(b for b in backends if b.default)
        self.labels = frozenset(labels)

    def __iter__(self) -> Iterator[StorageBackend]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, storage_id: str) -> StorageBackend:
        try:
            return self._by_id[storage_id]
        except KeyError:
            raise NotFound(f"{storage_id!r} is not a storage backend of this service") from None

    def media(self, storage_id: str) -> MediaStore:
        return self.get(storage_id).media

    async def open(self) -> None:
        """Connect the backends that need a client (S3); call inside the event loop that uses them."""
        await asyncio.gather(*(b.media.open() for b in self if isinstance(b.media, S3MediaStore)))

    async def close(self) -> None:
        await asyncio.gather(*(b.media.close() for b in self))


def backend_id(media_url: str, endpoint: str | None) -> str:
    """A stable UUID for a backend, the same in every process (S3 buckets are told apart by endpoint too)."""
    name = media_url if not media_url.startswith("s3://") else f"{media_url}#{endpoint or 'aws'}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def _derived_key(key: bytes, storage_id: str) -> bytes:
    """A per-backend signing key, so a URL signed for one local backend is useless on another."""
    return hmac.new(key, f"tams-backend:{storage_id}".encode(), hashlib.sha256).digest()


def configured_backends(settings: Settings) -> StorageBackends:
    """The backends the settings describe, not yet connected (`StorageBackends.open`).

    Reads AWS credentials through botocore's chain, which may block: call it before the event loop runs."""
    specs = [BackendSpec(media_url=settings.media_location, label=settings.media_label, tags=settings.media_tags),
             *settings.extra_storage_backends]
    return StorageBackends([_backend(settings, spec, default=index == 0) for index, spec in enumerate(specs)])


def _backend(settings: Settings, spec: BackendSpec, *, default: bool) -> StorageBackend:
    url = urlparse(spec.media_url)
    if url.scheme == "file":
        storage_id = backend_id(spec.media_url, None)
        route = "" if default else f"/storage/{storage_id}"
        key = settings.signing_key if default else _derived_key(settings.signing_key, storage_id)
        return StorageBackend(
            id=storage_id, label=spec.label or "local", provider=spec.provider or "tams-pipeline",
            store_product=spec.store_product or "local directory", default=default, tags=spec.tags,
            media=LocalMediaStore(Path(unquote(url.path)), fsync=settings.media_fsync),
            urls=LocalUrls(UrlSigner(key), settings.api_base_url + route), local_route=route)
    if url.scheme == "s3":
        endpoint = spec.s3_endpoint if spec.s3_endpoint is not None else settings.s3_endpoint
        region = spec.s3_region or settings.s3_region
        style = spec.s3_addressing_style or settings.s3_addressing_style
        plain = spec.s3_plain_urls if spec.s3_plain_urls is not None else settings.s3_plain_urls
        if not url.netloc:
            raise UnsupportedStoreUrl(f"{spec.media_url}: an S3 media URL is s3://bucket/prefix")
        store = S3MediaStore(bucket=url.netloc, prefix=unquote(url.path), endpoint_url=endpoint or None,
                             region=region, addressing_style=style, timeout_s=settings.s3_timeout_s)
        aws = not endpoint
        return StorageBackend(
            id=backend_id(spec.media_url, endpoint), label=spec.label or f"s3-{url.netloc}",
            provider=spec.provider or ("AWS" if aws else "S3-compatible"),
            store_product=spec.store_product or ("S3" if aws else "S3 API"), region=region, default=default,
            tags=spec.tags, media=store, urls=S3Urls(store, style, plain))
    raise UnsupportedStoreUrl(f"{spec.media_url}: supported media URLs are file:///path and s3://bucket/prefix")
