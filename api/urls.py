"""`get_urls` of objects: which instances a request asked for, and their (presigned) URLs.

A listing renders URLs for up to a thousand objects, so everything that depends only on the request
(filters, expiry, the JSON tail of each backend's entries) is decided once, and an object costs one
signature per controlled instance. Instances of the page's objects are looked up in one query each:
controlled copies only when more than one backend is configured, uncontrolled URLs only when the
request can show them.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from typing import Any

import orjson

from api.context import Context
from api.filters import tag_filter, tags_match
from api.paging import parse_bool
from stores.backends import StorageBackend


class UrlRenderer:
    """Renders `get_urls` for one request."""

    def __init__(self, c: Context, params: Any) -> None:
        self._now = int(time.time())
        self._lifetime = c.settings.presigned_url_timeout_s
        accept = params.get("accept_get_urls")
        self._labels = None if accept is None else {label for label in accept.split(",") if label}
        presigned = params.get("presigned")
        if presigned is not None:
            presigned = "true" if parse_bool("presigned", presigned) else "false"
        storage_ids = params.get("accept_storage_ids")
        wanted_ids = set(storage_ids.split(",")) if storage_ids else None
        backend_tags = tag_filter(params, "storage_backend_tag")
        verbose = parse_bool("verbose_storage", params.get("verbose_storage"))
        # (backend, signed?, JSON tail of its entries) for every controlled kind of URL the request accepts.
        self._kinds: dict[str, list[tuple[StorageBackend, bool, bytes]]] = {}
        for b in c.backends:
            if ((self._labels is not None and b.label not in self._labels)
                    or (wanted_ids is not None and b.id not in wanted_ids) or not tags_match(b.tags, backend_tags)):
                continue
            extra = {"storage_id": b.id, "controlled": True, "store_type": b.store_type, "provider": b.provider,
                     "store_product": b.store_product} if verbose else {}
            kinds = []
            if presigned != "false":
                kinds.append((b, True, orjson.dumps({"presigned": True, "label": b.label, **extra})[1:]))
            if presigned != "true" and b.urls.offers_plain_urls:
                kinds.append((b, False, orjson.dumps({"presigned": False, "label": b.label, **extra})[1:]))
            if kinds:
                self._kinds[b.id] = kinds
        self._uncontrolled_extra = {"controlled": False} if verbose else {}  # not verbose: url, presigned, label
        self.single_backend = len(c.backends) == 1
        self._default = (c.backends.default.id,)
        # Uncontrolled URLs have no backend, so any backend filter leaves them out.
        self.uncontrolled = (presigned != "true" and wanted_ids is None and self._labels != set()
                             and not backend_tags.values and not backend_tags.exists)

    @property
    def controlled(self) -> bool:
        return bool(self._kinds)

    def render(self, object_id: str, storage_ids: Collection[str] | None = None,
               uncontrolled: Iterable[tuple[str, str]] = ()) -> bytes:
        """`,"get_urls":[...]` for one object (empty when no instance passes the filters).

        `storage_ids` are the object's controlled instances; None means the default backend only."""
        entries = []
        for storage_id in storage_ids if storage_ids is not None else self._default:
            for backend, signed, tail in self._kinds.get(storage_id, ()):
                url = (backend.urls.sign("GET", object_id, self._now, self._lifetime) if signed
                       else backend.urls.plain_url(object_id))
                entries.append(b'{"url":' + orjson.dumps(url) + b"," + tail)
        if self.uncontrolled:
            entries += [orjson.dumps({"url": url, "presigned": False, "label": label, **self._uncontrolled_extra})
                        for label, url in uncontrolled if self._labels is None or label in self._labels]
        return b',"get_urls":[' + b",".join(entries) + b"]" if entries else b""


class Instances:
    """Controlled and uncontrolled instances of a page of objects, looked up with as few queries as possible."""

    def __init__(self, controlled: dict[str, tuple[str, ...]] | None,
                 uncontrolled: dict[str, list[tuple[str, str]]]) -> None:
        self._controlled = controlled
        self._uncontrolled = uncontrolled

    @classmethod
    async def lookup(cls, c: Context, urls: UrlRenderer, object_ids: Collection[str]) -> Instances:
        controlled = None
        if urls.controlled and not urls.single_backend and object_ids:
            records = await c.store.get_objects(object_ids)
            controlled = {object_id: r.storage_ids for object_id, r in records.items()}
        uncontrolled = await c.store.uncontrolled_instances(object_ids) if urls.uncontrolled and object_ids else {}
        return cls(controlled, uncontrolled)

    def render(self, urls: UrlRenderer, object_id: str) -> bytes:
        storage_ids = None if self._controlled is None else self._controlled.get(object_id, ())
        return urls.render(object_id, storage_ids, self._uncontrolled.get(object_id, ()))
