"""Flow records: create or replace, implicit sources, collections, and the stats segments keep up to date."""

from __future__ import annotations

import pytest

from stores.errors import Conflict, NotFound
from stores.metadata import FlowQuery, MetadataStore, SourceQuery
from tests.contract.conftest import (
    AUDIO,
    MULTI,
    S,
    add_flow,
    add_segments,
    flow_doc,
    new_id,
    seconds,
)


async def test_put_flow_creates_then_replaces_and_get_flow_returns_the_document_as_given(store: MetadataStore) -> None:
    doc = flow_doc(tags={"genre": ["news", "sport"], "empty": []}, label="a label", read_only=False,
                   description="ünïcödé ✓")
    assert await store.put_flow(doc, 100) is True
    record = await store.get_flow(doc["id"])
    assert record.doc == doc
    assert (record.id, record.created_ns, record.metadata_updated_ns) == (doc["id"], 100, 100)
    assert (record.segments_updated_ns, record.extent, record.segment_count) == (None, None, 0)
    assert record.collected_by == ()
    assert record.container == "video/mp2t" and record.read_only is False

    replacement = {**doc, "label": "another", "read_only": True}
    del replacement["description"]
    assert await store.put_flow(replacement, 200) is False
    record = await store.get_flow(doc["id"])
    assert record.doc == replacement
    assert (record.created_ns, record.metadata_updated_ns, record.read_only) == (100, 200, True)


async def test_get_flow_of_an_unknown_id_raises_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFound):
        await store.get_flow(new_id())


async def test_replacing_a_flow_keeps_its_segments_and_stats(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await add_segments(store, flow_id, [seconds(0, 1), seconds(1, 3)], now_ns=150)
    await store.put_flow({**(await store.get_flow(flow_id)).doc, "label": "renamed"}, 200)
    record = await store.get_flow(flow_id)
    assert (record.extent, record.segment_count, record.segments_updated_ns) == ((0, 3 * S), 2, 150)
    assert record.max_segment_ns >= 2 * S


async def test_the_first_flow_creates_its_source_and_later_flows_share_it(store: MetadataStore) -> None:
    source_id = new_id()
    first = await add_flow(store, source_id=source_id, now_ns=100)
    source = await store.get_source(source_id)
    assert source.doc["id"] == source_id and source.doc["format"] == "urn:x-nmos:format:video"
    assert (source.created_ns, source.updated_ns) == (100, 100)
    second = await add_flow(store, source_id=source_id, now_ns=200)
    assert (await store.get_source(source_id)).created_ns == 100
    assert {r.id for r in await store.list_flows(FlowQuery(source_id=source_id))} == {first, second}
    assert [r.doc["id"] for r in await store.list_sources(SourceQuery())] == [source_id]


async def test_a_flow_whose_format_differs_from_its_sources_is_a_conflict_and_is_not_stored(
        store: MetadataStore) -> None:
    source_id = new_id()
    await add_flow(store, source_id=source_id)
    audio = flow_doc(source_id=source_id, format=AUDIO)
    with pytest.raises(Conflict):
        await store.put_flow(audio, 200)
    with pytest.raises(NotFound):
        await store.get_flow(audio["id"])
    assert (await store.get_source(source_id)).doc["format"] == "urn:x-nmos:format:video"


async def test_a_collection_naming_an_unknown_flow_is_a_conflict_and_is_not_stored(store: MetadataStore) -> None:
    member = await add_flow(store)
    doc = {"id": new_id(), "source_id": new_id(), "format": MULTI,
           "flow_collection": [{"id": member}, {"id": new_id()}]}
    with pytest.raises(Conflict):
        await store.put_flow(doc, 100)
    with pytest.raises(NotFound):
        await store.get_flow(doc["id"])
    assert (await store.get_flow(member)).collected_by == ()


async def test_a_replacement_naming_an_unknown_member_is_a_conflict_and_changes_nothing(store: MetadataStore) -> None:
    member = await add_flow(store)
    doc = {"id": new_id(), "source_id": new_id(), "format": MULTI, "flow_collection": [{"id": member}]}
    await store.put_flow(doc, 100)
    with pytest.raises(Conflict):
        await store.put_flow({**doc, "label": "changed", "flow_collection": [{"id": new_id()}]}, 200)
    record = await store.get_flow(doc["id"])
    assert (record.doc, record.metadata_updated_ns) == (doc, 100)
    assert (await store.get_flow(member)).collected_by == (doc["id"],)


async def test_collections_are_inferred_for_flows_and_their_sources(store: MetadataStore) -> None:
    video_src, audio_src, multi_src = new_id(), new_id(), new_id()
    video = await add_flow(store, source_id=video_src)
    audio = await add_flow(store, source_id=audio_src, format=AUDIO)
    collection = {"id": new_id(), "source_id": multi_src, "format": MULTI,
                  "flow_collection": [{"id": video, "role": "picture"}, {"id": audio, "role": "sound"}]}
    await store.put_flow(collection, 100)
    assert (await store.get_flow(collection["id"])).doc["flow_collection"] == collection["flow_collection"]
    assert (await store.get_flow(video)).collected_by == (collection["id"],)
    assert (await store.get_flow(audio)).collected_by == (collection["id"],)
    multi = await store.get_source(multi_src)
    assert sorted(multi.source_collection, key=lambda m: m["id"]) == sorted(
        [{"id": video_src, "role": "picture"}, {"id": audio_src, "role": "sound"}], key=lambda m: m["id"])
    assert (await store.get_source(video_src)).collected_by == (multi_src,)
    assert multi.collected_by == ()


async def test_a_flow_collected_by_several_lists_them_all(store: MetadataStore) -> None:
    member = await add_flow(store)
    collectors = sorted(new_id() for _ in range(3))
    for c in collectors:
        await store.put_flow({"id": c, "source_id": new_id(), "format": MULTI, "flow_collection": [{"id": member}]},
                             100)
    assert sorted((await store.get_flow(member)).collected_by) == collectors
    listed = await store.list_flows(FlowQuery(collected_by_ids=(collectors[1],)))
    assert [r.id for r in listed] == [member]
    assert sorted(listed[0].collected_by) == collectors


async def test_replacing_a_collection_replaces_its_members(store: MetadataStore) -> None:
    a, b = await add_flow(store), await add_flow(store)
    doc = {"id": new_id(), "source_id": new_id(), "format": MULTI, "flow_collection": [{"id": a}]}
    await store.put_flow(doc, 100)
    await store.put_flow({**doc, "flow_collection": [{"id": b}]}, 200)
    assert (await store.get_flow(a)).collected_by == ()
    assert (await store.get_flow(b)).collected_by == (doc["id"],)
    assert {r.id for r in await store.list_flows(FlowQuery(collected_by_ids=()))} == {a, doc["id"]}
    await store.put_flow({k: v for k, v in doc.items() if k != "flow_collection"}, 300)
    assert (await store.get_flow(b)).collected_by == ()


async def test_commits_keep_extent_count_and_longest_segment_up_to_date(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await add_segments(store, flow_id, [seconds(10, 11), seconds(11, 12)], now_ns=100)
    record = await store.get_flow(flow_id)
    assert (record.extent, record.segment_count, record.segments_updated_ns) == ((10 * S, 12 * S), 2, 100)
    assert record.max_segment_ns >= 1 * S
    await add_segments(store, flow_id, [seconds(-5, 0)], now_ns=200)  # earlier and longer
    await add_segments(store, flow_id, [seconds(20, 20.5)], now_ns=300)  # later and shorter
    record = await store.get_flow(flow_id)
    assert (record.extent, record.segment_count, record.segments_updated_ns) == ((-5 * S, 20 * S + S // 2), 4, 300)
    assert record.max_segment_ns >= 5 * S
    assert record.metadata_updated_ns == 1_000  # segments are not metadata
