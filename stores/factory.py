"""Picking the metadata backend from `TAMS_METADATA_URL` (media backends: `stores.backends`)."""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from stores.backends import UnsupportedStoreUrl
from stores.metadata import MetadataStore
from tams.settings import Settings

__all__ = ["UnsupportedStoreUrl", "open_metadata_store", "vast_store_from_url"]


async def open_metadata_store(settings: Settings, *, readers: int = 4) -> MetadataStore:
    """Open (and create or migrate the schema of) the configured metadata store."""
    location = settings.metadata_location
    scheme = urlparse(location).scheme
    store: MetadataStore
    if scheme == "sqlite":
        from stores.sqlite import SqliteMetadataStore

        store = SqliteMetadataStore(Path(unquote(urlparse(location).path)), readers=readers)
    elif scheme in ("postgresql", "postgres"):
        from stores.postgres import PostgresMetadataStore

        store = PostgresMetadataStore(location, max_size=max(readers, 2) + 2)
    elif scheme == "vast":
        store = vast_store_from_url(location, settings)
    else:
        raise UnsupportedStoreUrl(
            f"TAMS_METADATA_URL={location}: supported schemes are sqlite://, postgresql:// and vast://")
    await store.open()
    return store


def vast_store_from_url(location: str, settings: Settings) -> MetadataStore:
    """`vast://[access:secret@]host[:port]/bucket/schema[?tls=true]`.

    The keys default to TAMS_VAST_ACCESS_KEY and TAMS_VAST_SECRET_KEY (better than keys in a URL)."""
    try:
        import vastdb
    except ImportError:
        raise UnsupportedStoreUrl("vast:// needs the vastdb SDK: pip install 'tams-pipeline[vast]'") from None
    from stores.vast import VastMetadataStore

    url = urlparse(location)
    parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
    if not url.hostname or len(parts) != 2:
        raise UnsupportedStoreUrl(f"TAMS_METADATA_URL={location}: expected vast://host[:port]/bucket/schema")
    tls = parse_qs(url.query).get("tls", ["false"])[0].lower() in ("1", "true", "yes")
    endpoint = f"{'https' if tls else 'http'}://{url.hostname}{f':{url.port}' if url.port else ''}"
    access = unquote(url.username or "") or settings.vast_access_key
    secret = unquote(url.password or "") or settings.vast_secret_key
    if not access or not secret:
        raise UnsupportedStoreUrl("a VAST DB store needs an access key and secret (TAMS_VAST_ACCESS_KEY/SECRET_KEY)")
    connect = functools.partial(vastdb.connect, endpoint=endpoint, access=access, secret=secret,
                                timeout=settings.vast_timeout_s)
    return VastMetadataStore(session_factory=connect, bucket=parts[0], schema=parts[1],
                             timeout_s=settings.vast_timeout_s)
