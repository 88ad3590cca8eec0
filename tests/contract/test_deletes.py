"""Deletes: only covered segments go, flow stats follow, objects go with their last reference; flows and
their sources; deletion-request records."""

from __future__ import annotations

import pytest

from stores.errors import NotFound
from stores.metadata import Deletion, FlowQuery, MetadataStore, ObjectAllocation
from tests.contract.conftest import (
    MULTI,
    STORAGE,
    S,
    add_flow,
    add_segments,
    all_segments,
    new_id,
    ordered_id,
    seconds,
    span,
    spans,
)


async def ten_seconds(store: MetadataStore, flow_id: str | None = None) -> tuple[str, list]:
    """A flow with ten one-second segments [i:0_i+1:0), each with its own registered object."""
    flow_id = flow_id or await add_flow(store)
    segs = await add_segments(store, flow_id, [seconds(i, i + 1, f"o{i}") for i in range(10)], now_ns=100)
    return flow_id, segs


async def present(store: MetadataStore, *object_ids: str) -> set[str]:
    return set(await store.get_objects(object_ids))


async def test_only_segments_completely_covered_by_the_window_are_deleted(store: MetadataStore) -> None:
    flow_id, segs = await ten_seconds(store)
    deletion = await store.delete_segments(flow_id, *span("[2:500000000_6:0)"), None, 500)
    assert (deletion.segments, deletion.span, deletion.more) == (3, (3 * S, 6 * S), False)
    assert await all_segments(store, flow_id) == segs[:3] + segs[6:]
    assert {o.object_id for o in deletion.unreferenced_objects} == {"o3", "o4", "o5"}
    assert await present(store, *(f"o{i}" for i in range(10))) == {f"o{i}" for i in (0, 1, 2, 6, 7, 8, 9)}


COVERAGE = {
    "[0:0_1:0)": [0],
    "[0:0_0:999999999]": [0],
    "[0:0_0:999999999)": [],  # one nanosecond short of covering
    "(0:0_1:0]": [],  # misses the first instant
    "[3:0_5:0]": [3, 4],
    "(2:999999999_5:0)": [3, 4],
    "[9:0_": [9],
    "_1:0)": [0],
    "[4:0]": [],
    "_": list(range(10)),
}


async def test_coverage_honours_clusivity_to_the_nanosecond(store: MetadataStore) -> None:
    wrong = {}
    for timerange, expected in COVERAGE.items():  # each case on a flow of its own
        flow_id, segs = await ten_seconds(store)
        deletion = await store.delete_segments(flow_id, *span(timerange), None, 500)
        left = await all_segments(store, flow_id)
        if deletion.segments != len(expected) or left != [s for i, s in enumerate(segs) if i not in expected]:
            wrong[timerange] = f"deleted {deletion.segments}, expected {expected}"
    assert not wrong, wrong


async def test_a_window_covering_nothing_deletes_nothing_and_changes_nothing(store: MetadataStore) -> None:
    flow_id, segs = await ten_seconds(store)
    before = await store.get_flow(flow_id)
    deletion = await store.delete_segments(flow_id, *span("[2:100000000_2:900000000)"), None, 500)
    assert deletion == Deletion(0, None, [])
    assert await all_segments(store, flow_id) == segs
    after = await store.get_flow(flow_id)
    assert (after.extent, after.segment_count) == (before.extent, before.segment_count)


async def test_an_object_filter_deletes_only_covered_segments_using_that_object(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    segs = await add_segments(store, flow_id, [seconds(i, i + 1, "shared" if i % 2 else f"own{i}")
                                               for i in range(8)])
    deletion = await store.delete_segments(flow_id, *span("[0:0_6:0)"), "shared", 500)
    assert (deletion.segments, deletion.span) == (3, (1 * S, 6 * S))
    assert await all_segments(store, flow_id) == [s for i, s in enumerate(segs) if i % 2 == 0 or i == 7]
    assert deletion.unreferenced_objects == []  # segment 7 still uses it
    deletion = await store.delete_segments(flow_id, *span("_"), "shared", 600)
    assert deletion.segments == 1 and [o.object_id for o in deletion.unreferenced_objects] == ["shared"]
    assert spans(await all_segments(store, flow_id)) == [(i * S, (i + 1) * S) for i in range(0, 8, 2)]


@pytest.mark.parametrize(("limit", "chunks"), [(4, [4, 4, 2]), (5, [5, 5]), (1, [1] * 10), (10, [10]),
                                               (11, [10])], ids=["limit4", "limit5", "limit1", "limit10", "limit11"])
async def test_a_limited_delete_takes_the_earliest_covered_segments_and_says_if_more_remain(
        store: MetadataStore, limit: int, chunks: list[int]) -> None:
    flow_id, segs = await ten_seconds(store)
    other = (await add_segments(store, flow_id, [seconds(20, 30)]))[0]  # not covered: never counted
    done = 0
    for i, n in enumerate(chunks):
        deletion = await store.delete_segments(flow_id, *span("[0:0_25:0)"), None, 500 + i, limit=limit)
        assert (deletion.segments, deletion.more) == (n, i < len(chunks) - 1)
        assert deletion.span == (done * S, (done + n) * S)
        assert {o.object_id for o in deletion.unreferenced_objects} == {f"o{j}" for j in range(done, done + n)}
        done += n
        assert await all_segments(store, flow_id) == segs[done:] + [other]
        assert (await store.get_flow(flow_id)).segment_count == 11 - done
    assert await store.delete_segments(flow_id, *span("[0:0_25:0)"), None, 900, limit=limit) == Deletion(0, None, [])


async def test_deletes_refresh_the_flow_extent_count_and_segments_updated(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await add_segments(store, flow_id, [seconds(0, 100), seconds(100, 101), seconds(101, 102), seconds(200, 201)],
                       now_ns=100)
    await store.delete_segments(flow_id, *span("[150:0_"), None, 200)
    record = await store.get_flow(flow_id)
    assert (record.extent, record.segment_count, record.segments_updated_ns) == ((0, 102 * S), 3, 200)
    await store.delete_segments(flow_id, *span("_100:0)"), None, 300)  # the long first segment
    record = await store.get_flow(flow_id)
    assert (record.extent, record.segment_count, record.segments_updated_ns) == ((100 * S, 102 * S), 2, 300)
    await store.delete_segments(flow_id, *span("[101:0_102:0)"), None, 400)
    record = await store.get_flow(flow_id)
    assert (record.extent, record.segment_count) == ((100 * S, 101 * S), 1)
    await store.delete_segments(flow_id, *span("_"), None, 500)
    record = await store.get_flow(flow_id)
    assert (record.extent, record.segment_count, record.segments_updated_ns) == (None, 0, 500)
    assert record.metadata_updated_ns == 1_000


async def test_segments_added_after_a_delete_are_found_and_counted(store: MetadataStore) -> None:
    flow_id, _ = await ten_seconds(store)
    await store.delete_segments(flow_id, *span("[3:0_5:0)"), None, 200)
    refill = await add_segments(store, flow_id, [seconds(3, 5, "refill")], now_ns=300)
    assert await all_segments(store, flow_id, "[3:0_5:0)") == refill
    record = await store.get_flow(flow_id)
    assert (record.extent, record.segment_count) == ((0, 10 * S), 9)


# -------------------------------------------------------------------------------------------- object lifetimes


async def test_an_object_shared_by_two_flows_goes_with_its_last_reference(store: MetadataStore) -> None:
    first, second = await add_flow(store, ordered_id(1)), await add_flow(store, ordered_id(2))
    await add_segments(store, first, [seconds(0, 1, "shared")])
    await add_segments(store, second, [seconds(10, 11, "shared", ts_offset=10 * S)], register=False)
    await store.add_uncontrolled_instances("shared", [("mirror", "https://mirror.example/shared")])
    record = (await store.get_objects(["shared"]))["shared"]

    deletion = await store.delete_segments(first, *span("_"), None, 500)
    assert deletion.segments == 1 and deletion.unreferenced_objects == []
    assert await present(store, "shared") == {"shared"}
    assert await store.object_references("shared", after_flow=None, limit=10) == [second]

    deletion = await store.delete_segments(second, *span("_"), None, 600)
    assert deletion.unreferenced_objects == [record]
    assert await present(store, "shared") == set()
    assert await store.object_references("shared", after_flow=None, limit=10) == []
    assert (await store.uncontrolled_instances(["shared"])).get("shared", []) == []


async def test_an_init_object_goes_with_the_last_segment_that_uses_it(store: MetadataStore) -> None:
    first, second = await add_flow(store), await add_flow(store)
    await store.allocate_objects([ObjectAllocation("init", STORAGE, first, "video/mp4", 10)])
    await add_segments(store, first, [seconds(0, 1, "m1", init_object_id="init")])
    await add_segments(store, second, [seconds(0, 1, "m2", init_object_id="init")])
    init, m2 = (await store.get_objects(["init"]))["init"], (await store.get_objects(["m2"]))["m2"]

    deletion = await store.delete_segments(first, *span("_"), None, 500)
    assert [o.object_id for o in deletion.unreferenced_objects] == ["m1"]
    assert await present(store, "init", "m1", "m2") == {"init", "m2"}

    deletion = await store.delete_segments(second, *span("_"), None, 600)
    assert sorted(deletion.unreferenced_objects, key=lambda o: o.object_id) == [init, m2]
    assert await present(store, "init", "m2") == set()


async def test_an_object_used_twice_in_one_flow_stays_until_both_segments_go(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await add_segments(store, flow_id, [seconds(0, 1, "obj"), seconds(1, 2, "obj", ts_offset=1 * S)])
    deletion = await store.delete_segments(flow_id, *span("[0:0_1:0)"), None, 500)
    assert deletion.unreferenced_objects == [] and await present(store, "obj") == {"obj"}
    deletion = await store.delete_segments(flow_id, *span("[1:0_2:0)"), None, 600)
    assert [o.object_id for o in deletion.unreferenced_objects] == ["obj"]


# -------------------------------------------------------------------------------------------- delete_flow


async def test_delete_flow_removes_segments_objects_and_the_flows_own_allocations(store: MetadataStore) -> None:
    source_id = new_id()
    doomed = await add_flow(store, source_id=source_id)
    sibling = await add_flow(store, source_id=source_id)
    segs = [seconds(i, i + 1, f"own{i}") for i in range(3)] + [seconds(3, 4, "shared", init_object_id="init")]
    await store.allocate_objects([ObjectAllocation("spare", STORAGE, doomed, None, 10),
                                  ObjectAllocation("theirs", STORAGE, sibling, None, 10)])
    await add_segments(store, doomed, segs)
    await add_segments(store, sibling, [seconds(0, 1, "shared", ts_offset=-3 * S, init_object_id="init")],
                       register=False)
    before = await store.get_objects(["own0", "own1", "own2", "spare"])

    deletion = await store.delete_flow(doomed)
    assert (deletion.segments, deletion.span, deletion.source_deleted) == (4, (0, 4 * S), None)
    assert sorted(deletion.unreferenced_objects, key=lambda o: o.object_id) == [
        before[k] for k in ("own0", "own1", "own2", "spare")]
    with pytest.raises(NotFound):
        await store.get_flow(doomed)
    assert await all_segments(store, doomed) == []
    assert await present(store, "own0", "spare", "shared", "theirs") == {"shared", "theirs"}
    assert (await store.get_source(source_id)).doc["id"] == source_id
    assert [r.id for r in await store.list_flows(FlowQuery())] == [sibling]


async def test_deleting_the_last_flow_of_a_source_deletes_the_source(store: MetadataStore) -> None:
    source_id = new_id()
    first, second = await add_flow(store, source_id=source_id), await add_flow(store, source_id=source_id)
    assert (await store.delete_flow(first)).source_deleted is None
    deletion = await store.delete_flow(second)
    assert deletion.source_deleted == source_id
    assert (deletion.segments, deletion.span, deletion.unreferenced_objects) == (0, None, [])
    with pytest.raises(NotFound):
        await store.get_source(source_id)


async def test_delete_flow_of_an_unknown_flow_is_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFound):
        await store.delete_flow(new_id())


async def test_a_deleted_collection_no_longer_collects_its_members(store: MetadataStore) -> None:
    member = await add_flow(store)
    collection = {"id": new_id(), "source_id": new_id(), "format": MULTI, "flow_collection": [{"id": member}]}
    await store.put_flow(collection, 100)
    await store.delete_flow(collection["id"])
    assert (await store.get_flow(member)).collected_by == ()
    assert [r.id for r in await store.list_flows(FlowQuery(collected_by_ids=()))] == [member]


# -------------------------------------------------------------------------------------------- deletion requests


def deletion_request(n: int, status: str = "started") -> dict:
    return {"id": ordered_id(n), "flow_id": ordered_id(1000 + n), "delete_flow": False,
            "timerange_to_delete": "_", "timerange_remaining": "[5:0_", "status": status,
            "created": "2025-01-01T00:00:00Z", "expiry": "2025-01-02T00:00:00Z"}


async def test_deletion_requests_are_created_replaced_and_read_back(store: MetadataStore) -> None:
    await store.put_deletion_request(deletion_request(1), 100)
    assert await store.get_deletion_request(ordered_id(1)) == deletion_request(1)
    done = {**deletion_request(1, "done"), "timerange_remaining": "()"}
    await store.put_deletion_request(done, 200)
    assert await store.get_deletion_request(ordered_id(1)) == done
    assert await store.list_deletion_requests(after_id=None, limit=10) == [done]
    with pytest.raises(NotFound):
        await store.get_deletion_request(ordered_id(2))


async def test_deletion_requests_page_in_id_order(store: MetadataStore) -> None:
    for n in (5, 2, 9, 1, 7):
        await store.put_deletion_request(deletion_request(n), 100)
    ids = [ordered_id(n) for n in (1, 2, 5, 7, 9)]
    first = await store.list_deletion_requests(after_id=None, limit=2)
    assert [r["id"] for r in first] == ids[:2]
    second = await store.list_deletion_requests(after_id=first[-1]["id"], limit=2)
    assert [r["id"] for r in second] == ids[2:4]
    third = await store.list_deletion_requests(after_id=second[-1]["id"], limit=2)
    assert [r["id"] for r in third] == ids[4:]
    assert await store.list_deletion_requests(after_id=ids[-1], limit=2) == []


async def test_a_flow_created_again_after_deletion_starts_empty(store: MetadataStore) -> None:
    flow_id = await add_flow(store, now_ns=100)
    await add_segments(store, flow_id, [seconds(-1000, 0, "long"), seconds(0, 1, "short")])
    await store.delete_flow(flow_id)
    again = {"id": flow_id, "source_id": new_id(), "format": MULTI}
    assert await store.put_flow(again, 900) is True
    record = await store.get_flow(flow_id)
    assert record.doc == again
    assert (record.created_ns, record.extent, record.segment_count, record.segments_updated_ns) == (900, None, 0, None)
    assert await all_segments(store, flow_id) == []
    assert await store.get_objects(["long", "short"]) == {}
