"""Object bytes across storage backends, for the agent: writing inline media, learning size and checksum,
copying, and deleting the bytes of objects whose records are gone.

Every media-store call is retried while the store is unreachable (`MediaUnavailable`), backing off up
to a limit: the batch waits meanwhile, so nothing is acked and the agent stops taking events, and it
goes on where it stopped once the store answers again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from agents import metrics
from stores.backends import StorageBackends
from stores.errors import MediaUnavailable, NotFound
from stores.media import MediaInfo
from stores.metadata import ObjectRecord, ObjectRegistration

log = logging.getLogger(__name__)
T = TypeVar("T")


class ObjectBytes:
    """The agent's access to object bytes on every configured backend."""

    def __init__(self, backends: StorageBackends, *, retry_max_s: float) -> None:
        self.backends = backends
        self.retry_max_s = retry_max_s

    async def put_inline(self, items: list[tuple[str, bytes]]) -> dict[str, MediaInfo]:
        """Store inline media on the default backend; what was stored, by key."""
        media = self.backends.default.media
        return {i.key: i for i in await self.retrying("put", lambda: media.put_many(items))}

    async def uploaded_facts(self, registrations: Iterable[ObjectRegistration]) -> dict[str, MediaInfo]:
        """Size and checksum of objects clients uploaded, read from their backends (one batched call each)."""
        by_backend: dict[str, list[str]] = {}
        for registration in registrations:
            by_backend.setdefault(registration.storage_id, []).append(registration.object_id)
        facts: dict[str, MediaInfo] = {}
        for storage_id, keys in by_backend.items():
            try:
                media = self.backends.media(storage_id)
            except NotFound:
                continue
            facts |= await self.retrying("info", functools.partial(media.info_many, keys))
        return facts

    async def copy(self, record: ObjectRecord, storage_id: str) -> None:
        """Copy the object's bytes from one of its controlled copies to the backend `storage_id`.

        Raises NotFound when no copy is on a configured backend, MediaNotFound when the bytes are missing."""
        target = self.backends.get(storage_id)
        configured = {b.id for b in self.backends}
        sources = [self.backends.get(s) for s in record.storage_ids if s in configured]
        if not sources:
            raise NotFound(f"object {record.object_id} has no copy on a configured backend")
        await self.retrying("copy", lambda: target.media.copy_from(sources[0].media, record.object_id))

    async def delete_copy(self, object_id: str, storage_id: str) -> None:
        media = self.backends.media(storage_id)
        await self.retrying("delete", functools.partial(media.delete, object_id))
        metrics.MEDIA_DELETED.labels("instance_removed").inc()

    async def forget(self, records: list[ObjectRecord], cause: str) -> None:
        """Delete the controlled bytes of objects whose records are already gone (uncontrolled ones are never
        touched). The record goes first, so no listing ever offers a URL to deleted bytes; a crash in between
        leaves bytes without a record, which nothing serves."""
        deletions = []
        for record in records:
            for storage_id in record.storage_ids:
                try:
                    media = self.backends.media(storage_id)
                except NotFound:
                    log.warning("object %s has bytes on storage %s, which is not configured: kept",
                                record.object_id, storage_id)
                    continue
                deletions.append(self.retrying("delete", functools.partial(media.delete, record.object_id)))
        await asyncio.gather(*deletions)
        metrics.MEDIA_DELETED.labels(cause).inc(len(deletions))

    async def retrying(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a media-store call until it succeeds, backing off while the store is unreachable."""
        delay = 0.2
        while True:
            try:
                return await call()
            except MediaUnavailable as exc:
                metrics.MEDIA_RETRIES.labels(operation).inc()
                log.warning("media store unavailable (%s); retrying %s in %.1f s", exc, operation, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    async def close(self) -> None:
        await self.backends.close()
