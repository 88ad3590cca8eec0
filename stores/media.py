"""The media-store contract: object bytes by key, independent of flows and timeranges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What the store knows about stored bytes."""

    key: str
    size: int
    checksum: str | None = None  # "<algorithm>:<value>" when the store knows one (e.g. "md5:<hex>")


class MediaStore(Protocol):
    """Async access to object bytes. Keys are opaque strings chosen by the metadata layer.

    Every call is one unit of work; a missing key raises `stores.errors.MediaNotFound`, and a store
    that cannot be reached right now raises `stores.errors.MediaUnavailable` (callers retry).
    """

    async def put(self, key: str, data: bytes) -> MediaInfo:
        """Store `data` under `key` durably (replacing any earlier bytes) before returning."""
        ...

    async def put_many(self, items: list[tuple[str, bytes]]) -> list[MediaInfo]:
        """Store several objects durably; returns once all of them are durable."""
        ...

    async def info(self, key: str) -> MediaInfo:
        """Size of the stored object."""
        ...

    async def info_many(self, keys: list[str]) -> dict[str, MediaInfo]:
        """What is stored under each key; keys with nothing stored are left out."""
        ...

    async def exists(self, key: str) -> bool:
        ...

    def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Stream bytes [start, end) of the object in chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    async def copy_from(self, source: MediaStore, key: str) -> MediaInfo:
        """Copy the object `key` from `source` into this store (server-side where both ends allow it)."""
        ...

    async def close(self) -> None:
        ...


async def copy_through(dest: MediaStore, source: MediaStore, key: str) -> MediaInfo:
    """Copy by reading the object from `source` and writing it to `dest` (held in memory once)."""
    size = (await source.info(key)).size
    parts = [chunk async for chunk in source.read_range(key, 0, size)]
    return await dest.put(key, b"".join(parts))
