"""Picking store backends from the configured URLs."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

from stores.localdir import LocalMediaStore
from stores.media import MediaStore
from stores.metadata import MetadataStore
from stores.sqlite import SqliteMetadataStore
from tams.settings import Settings


class UnsupportedStoreUrl(ValueError):
    """The URL names a backend this build does not provide."""


async def open_metadata_store(settings: Settings, *, readers: int = 4) -> MetadataStore:
    url = urlparse(settings.metadata_location)
    if url.scheme != "sqlite":
        raise UnsupportedStoreUrl(f"TAMS_METADATA_URL={settings.metadata_location}: supported scheme is sqlite://")
    store = SqliteMetadataStore(Path(unquote(url.path)), readers=readers)
    await store.open()
    return store


def open_media_store(settings: Settings) -> MediaStore:
    url = urlparse(settings.media_location)
    if url.scheme != "file":
        raise UnsupportedStoreUrl(f"TAMS_MEDIA_URL={settings.media_location}: supported scheme is file://")
    return LocalMediaStore(Path(unquote(url.path)), fsync=settings.media_fsync)


def storage_backend_id(settings: Settings) -> str:
    """A stable UUID for the configured media backend, the same in every process."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, settings.media_location))
