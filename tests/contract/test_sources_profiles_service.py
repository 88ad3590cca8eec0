"""Sources (replaced through put_source), profiles (immutable) and the service's editable info."""

from __future__ import annotations

import pytest

from stores.errors import Conflict, NotFound
from stores.metadata import MetadataStore, SourceQuery, TagFilter
from tests.contract.conftest import AUDIO, VIDEO, add_flow, new_id, ordered_id


async def test_put_source_replaces_the_document_and_moves_updated(store: MetadataStore) -> None:
    source_id = new_id()
    await add_flow(store, source_id=source_id, now_ns=100)
    doc = {"id": source_id, "format": VIDEO, "label": "camera 3", "description": "north side",
           "tags": {"crew": ["ann", "bob"], "site": "b"}}
    await store.put_source(doc, 200)
    source = await store.get_source(source_id)
    assert (source.doc, source.created_ns, source.updated_ns) == (doc, 100, 200)
    smaller = {"id": source_id, "format": VIDEO}
    await store.put_source(smaller, 300)
    source = await store.get_source(source_id)
    assert (source.doc, source.created_ns, source.updated_ns) == (smaller, 100, 300)
    assert await store.list_sources(SourceQuery(tags=TagFilter(exists={"crew": True}))) == []
    assert await store.list_sources(SourceQuery(label="camera 3")) == []


async def test_put_source_of_an_unknown_source_is_not_found_and_creates_nothing(store: MetadataStore) -> None:
    source_id = new_id()
    with pytest.raises(NotFound):
        await store.put_source({"id": source_id, "format": VIDEO}, 100)
    with pytest.raises(NotFound):
        await store.get_source(source_id)
    assert await store.list_sources(SourceQuery()) == []


# -------------------------------------------------------------------------------------------- profiles


def profile(n: int, *, label: str | None = None, format: str = VIDEO, codec: str = "video/h264") -> dict:
    doc = {"id": ordered_id(n), "flow_metadata": {"format": format, "codec": codec, "container": "video/mp2t"},
           "tags": {"tier": ["gold"]}}
    return doc | ({"label": label} if label is not None else {})


async def test_profiles_are_stored_as_given_and_cannot_be_created_twice(store: MetadataStore) -> None:
    doc = profile(1, label="HD")
    await store.create_profile(doc, 100)
    with pytest.raises(Conflict):
        await store.create_profile({**doc, "label": "changed"}, 200)
    record = await store.get_profile(doc["id"])
    assert (record.doc, record.created_ns) == (doc, 100)
    with pytest.raises(NotFound):
        await store.get_profile(ordered_id(2))


async def test_profiles_list_in_id_order_with_filters_and_paging(store: MetadataStore) -> None:
    for n, label, fmt, codec in [(4, "HD", VIDEO, "video/h264"), (2, "UHD", VIDEO, "video/h265"),
                                 (3, None, AUDIO, "audio/aac"), (1, "HD", VIDEO, "video/h265"),
                                 (5, "HD", VIDEO, "video/h264")]:
        await store.create_profile(profile(n, label=label, format=fmt, codec=codec), 100)

    async def listed(**filters: object) -> list[str]:
        query = {"format": None, "codec": None, "label": None, "after_id": None, "limit": 100} | filters
        return [r.doc["id"] for r in await store.list_profiles(**query)]  # type: ignore[arg-type]

    assert await listed() == [ordered_id(n) for n in (1, 2, 3, 4, 5)]
    assert await listed(format=AUDIO) == [ordered_id(3)]
    assert await listed(codec="video/h265") == [ordered_id(1), ordered_id(2)]
    assert await listed(label="HD") == [ordered_id(1), ordered_id(4), ordered_id(5)]
    assert await listed(label="HD", codec="video/h264") == [ordered_id(4), ordered_id(5)]
    assert await listed(limit=2) == [ordered_id(1), ordered_id(2)]
    assert await listed(after_id=ordered_id(2), limit=2) == [ordered_id(3), ordered_id(4)]
    assert await listed(after_id=ordered_id(4), limit=2) == [ordered_id(5)]
    assert await listed(label="HD", after_id=ordered_id(1), limit=1) == [ordered_id(4)]


# -------------------------------------------------------------------------------------------- service


async def test_service_info_is_empty_until_set_and_then_replaced_whole(store: MetadataStore) -> None:
    assert await store.get_service_info() == {}
    await store.put_service_info({"name": "tams", "description": "the store"})
    assert await store.get_service_info() == {"name": "tams", "description": "the store"}
    await store.put_service_info({"name": "renamed"})
    assert await store.get_service_info() == {"name": "renamed"}
