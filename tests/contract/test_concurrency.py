"""Concurrent writers (one per flow, as the agents are) and readers running alongside them."""

from __future__ import annotations

import asyncio

from stores.metadata import FlowQuery, MetadataStore, SegmentQuery, SourceQuery
from tests.contract.conftest import (
    S,
    add_flow,
    all_segments,
    commit,
    flow_doc,
    new_id,
    segment,
    span,
)

FLOWS = 8
COMMITS = 20
PER_COMMIT = 3


def planned(flow_index: int, commit_index: int) -> list:
    """Each flow gets its own rhythm: segment length and offset depend on the flow."""
    length = (flow_index + 1) * S // 4
    base = flow_index * 7 * S + commit_index * PER_COMMIT * length
    return [segment(base + k * length, base + (k + 1) * length, f"f{flow_index}-c{commit_index}-{k}")
            for k in range(PER_COMMIT)]


async def test_concurrent_writers_on_different_flows_each_get_exactly_their_segments(store: MetadataStore) -> None:
    flows = [await add_flow(store) for _ in range(FLOWS)]

    async def writer(i: int) -> None:  # one writer per flow, commits in sequence
        for c in range(COMMITS):
            await store.commit_segments([commit(flows[i], planned(i, c), event_ids=[f"{i}-{c}"], now_ns=1_000 + c)])

    await asyncio.gather(*(writer(i) for i in range(FLOWS)))
    for i, flow_id in enumerate(flows):
        expected = [s for c in range(COMMITS) for s in planned(i, c)]
        assert await all_segments(store, flow_id) == expected, f"flow {i}"
        record = await store.get_flow(flow_id)
        assert record.segment_count == COMMITS * PER_COMMIT
        assert record.extent == (expected[0].start_ns, expected[-1].end_ns)
        assert record.segments_updated_ns == 1_000 + COMMITS - 1
        assert record.max_segment_ns >= (i + 1) * S // 4
        assert await store.applied_event_ids(flow_id, [f"{i}-{c}" for c in range(COMMITS)]) == {
            f"{i}-{c}" for c in range(COMMITS)}
    objects = await store.get_objects([f"f{i}-c{c}-{k}" for i in range(FLOWS) for c in range(COMMITS)
                                       for k in range(PER_COMMIT)])
    assert len(objects) == FLOWS * COMMITS * PER_COMMIT and all(o.registered for o in objects.values())


async def test_readers_alongside_writers_see_sorted_pages_without_duplicates(store: MetadataStore) -> None:
    flows = [await add_flow(store) for _ in range(4)]
    done = asyncio.Event()
    problems: list[str] = []

    async def writer(i: int) -> None:
        for c in range(10):
            await store.commit_segments([commit(flows[i], planned(i, c))])

    async def reader(i: int) -> int:
        reads = 0
        while not done.is_set() or reads == 0:
            page = await store.list_segments(SegmentQuery(flows[i], *span("_"), limit=1000))
            starts = [s.start_ns for s in page.segments]
            if starts != sorted(set(starts)):
                problems.append(f"flow {i}: unsorted or duplicated page")
            if len(starts) % PER_COMMIT:
                problems.append(f"flow {i}: a commit's segments are half visible ({len(starts)})")
            record = await store.get_flow(flows[i])
            if record.segment_count % PER_COMMIT:
                problems.append(f"flow {i}: a commit is half visible (count {record.segment_count})")
            reads += 1
        return reads

    async def writers() -> None:
        try:
            await asyncio.gather(*(writer(i) for i in range(4)))
        finally:
            done.set()

    results = await asyncio.gather(writers(), *(reader(i) for i in range(4)))
    assert not problems, problems
    assert all(r >= 1 for r in results[1:])
    for flow_id in flows:
        assert len(await all_segments(store, flow_id)) == 10 * PER_COMMIT


async def test_concurrent_first_flows_of_one_source_create_it_once(store: MetadataStore) -> None:
    source_id = new_id()
    created = await asyncio.gather(*(add_flow(store, source_id=source_id, now_ns=100 + i) for i in range(FLOWS)))
    assert len(set(created)) == FLOWS
    sources = await store.list_sources(SourceQuery())
    assert [s.doc["id"] for s in sources] == [source_id]
    assert len(await store.list_flows(FlowQuery(source_id=source_id))) == FLOWS


async def test_concurrent_puts_of_different_flows_are_all_stored_once(store: MetadataStore) -> None:
    docs = [flow_doc() for _ in range(12)]
    assert await asyncio.gather(*(store.put_flow(doc, 1_000) for doc in docs)) == [True] * 12
    replaced = await asyncio.gather(*(store.put_flow({**doc, "label": "again"}, 2_000) for doc in docs[:6]))
    assert replaced == [False] * 6
    listed = await store.list_flows(FlowQuery(limit=100))
    assert sorted(r.id for r in listed) == sorted(doc["id"] for doc in docs)
    assert sorted(r.doc.get("label", "") for r in listed) == [""] * 6 + ["again"] * 6
