"""Objects: allocation, registration by segments, references across flows, controlled copies, uncontrolled
instances."""

from __future__ import annotations

import pytest

from schemas.timing import INT64_MAX, INT64_MIN
from stores.errors import Conflict, NotFound
from stores.metadata import (
    ContextRequest,
    MetadataStore,
    ObjectAllocation,
    ObjectRecord,
    SegmentCommit,
    SegmentQuery,
    TagFilter,
)
from tests.contract.conftest import (
    STORAGE,
    add_flow,
    add_segments,
    ordered_id,
    registration,
    seconds,
)

OTHER_STORAGE = "5e1f3c1a-0000-4000-8000-00000000bbbb"
THIRD_STORAGE = "5e1f3c1a-0000-4000-8000-00000000cccc"


def allocation(object_id: str, flow_id: str, created_ns: int = 1_000, content_type: str | None = None,
               storage_id: str = STORAGE) -> ObjectAllocation:
    return ObjectAllocation(object_id, storage_id, flow_id, content_type, created_ns)


async def registered_object(store: MetadataStore, object_id: str = "obj", *more: str) -> tuple[str, ObjectRecord]:
    """A flow with one segment per object id; the first object's record."""
    flow_id = await add_flow(store)
    await add_segments(store, flow_id, [seconds(i, i + 1, o) for i, o in enumerate((object_id, *more))])
    return flow_id, (await store.get_objects([object_id]))[object_id]


# -------------------------------------------------------------------------------------------- allocations


async def test_allocations_are_recorded_unregistered(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await store.allocate_objects([allocation("a", flow_id, 10, "video/mp2t"), allocation("b", flow_id, 11)])
    found = await store.get_objects(["a", "b", "missing"])
    assert set(found) == {"a", "b"}
    assert found["a"] == ObjectRecord(object_id="a", storage_id=STORAGE, allocated_by_flow=flow_id,
                                      content_type="video/mp2t", created_ns=10, registered=False)
    assert found["b"].content_type is None and found["b"].created_ns == 11
    assert found["a"].storage_ids == (STORAGE,)


async def test_get_objects_of_nothing_or_unknown_ids_is_empty(store: MetadataStore) -> None:
    assert await store.get_objects([]) == {}
    assert await store.get_objects(["nope", "nada"]) == {}


async def test_allocating_an_existing_id_is_a_conflict_and_records_none_of_the_batch(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await store.allocate_objects([allocation("taken", flow_id)])
    with pytest.raises(Conflict):
        await store.allocate_objects([allocation("fresh", flow_id, 20), allocation("taken", flow_id, 20)])
    found = await store.get_objects(["fresh", "taken"])
    assert set(found) == {"taken"} and found["taken"].created_ns == 1_000


async def test_allocating_the_id_of_a_registered_object_is_a_conflict(store: MetadataStore) -> None:
    flow_id, record = await registered_object(store, "used")
    with pytest.raises(Conflict):
        await store.allocate_objects([allocation("used", flow_id, 20)])
    assert (await store.get_objects(["used"]))["used"] == record


async def test_expired_allocations_are_the_unregistered_ones_created_before_the_cutoff(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await store.allocate_objects([allocation(f"a{t}", flow_id, t) for t in (10, 15, 20, 30)])
    await store.allocate_objects([allocation("used", flow_id, 5)])
    await add_segments(store, flow_id, [seconds(0, 1, "used")])
    assert {o.object_id for o in await store.expired_allocations(20, 100)} == {"a10", "a15"}
    assert {o.object_id for o in await store.expired_allocations(31, 100)} == {"a10", "a15", "a20", "a30"}
    assert await store.expired_allocations(10, 100) == []
    limited = await store.expired_allocations(31, 3)
    assert len(limited) == 3 and {o.object_id for o in limited} < {"a10", "a15", "a20", "a30"}
    assert all(not o.registered for o in limited)


async def test_drop_allocations_drops_only_unregistered_ones_and_returns_their_records(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await store.allocate_objects([allocation("spare", flow_id, 10), allocation("used", flow_id, 10),
                                  allocation("kept", flow_id, 10)])
    await add_segments(store, flow_id, [seconds(0, 1, "used")])
    before = await store.get_objects(["spare"])
    dropped = await store.drop_allocations(["spare", "used", "unknown"])
    assert dropped == [before["spare"]]
    assert set(await store.get_objects(["spare", "used", "kept"])) == {"used", "kept"}
    assert await store.drop_allocations([]) == []


async def test_an_allocation_in_use_as_an_init_object_is_never_collected(store: MetadataStore) -> None:
    """Init objects are never registered (registration is for media objects), yet segments depend on them."""
    flow_id, other = await add_flow(store), await add_flow(store)
    await store.allocate_objects([allocation("init", flow_id, 10), allocation("spare", flow_id, 10)])
    await add_segments(store, other, [seconds(0, 1, "media", init_object_id="init")])
    assert {o.object_id for o in await store.expired_allocations(10**18, 100)} == {"spare"}
    assert [o.object_id for o in await store.drop_allocations(["init", "spare"])] == ["spare"]
    assert "init" in await store.get_objects(["init"])

    deletion = await store.delete_flow(flow_id)  # the allocating flow goes; another flow still uses its init object
    assert "init" not in {o.object_id for o in deletion.unreferenced_objects}
    assert "init" in await store.get_objects(["init"])


# -------------------------------------------------------------------------------------------- registration


async def test_the_first_segment_registers_an_allocated_object_with_its_own_timeline(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await store.allocate_objects([allocation("obj", flow_id, 10)])
    seg = seconds(100, 102, "obj", ts_offset=100 * 10**9, init_object_id="init")  # object [0:0_2:0)
    reg = registration(seg, flow_id, now_ns=50, size=1234, checksum="sha256:abcd")
    await store.commit_segments([SegmentCommit(flow_id, [seg], [reg], now_ns=50)])
    record = (await store.get_objects(["obj"]))["obj"]
    assert record.registered
    assert (record.timerange, record.init_object_id, record.first_referenced_by_flow) == ("[0:0_2:0)", "init", flow_id)
    assert (record.size, record.checksum, record.storage_id, record.allocated_by_flow) == (
        1234, "sha256:abcd", STORAGE, flow_id)
    assert await store.expired_allocations(10**18, 100) == []
    assert await store.drop_allocations(["obj"]) == []


async def test_a_segment_can_register_an_object_that_was_never_allocated(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    seg = seconds(0, 1, "inline")
    await store.commit_segments([SegmentCommit(flow_id, [seg], [registration(seg, flow_id, now_ns=70, size=5)],
                                               now_ns=70)])
    record = (await store.get_objects(["inline"]))["inline"]
    assert record.registered and record.size == 5 and record.first_referenced_by_flow == flow_id
    assert (record.timerange, record.storage_id, record.created_ns) == ("[0:0_1:0)", STORAGE, 70)


# -------------------------------------------------------------------------------------------- references


async def test_object_references_list_every_flow_using_it_as_media_or_init_object(store: MetadataStore) -> None:
    flows = [await add_flow(store, ordered_id(i)) for i in range(5)]
    await add_segments(store, flows[3], [seconds(0, 1, "obj"), seconds(1, 2, "obj")])  # twice in one flow
    await add_segments(store, flows[0], [seconds(5, 6, "obj")], register=False)
    await add_segments(store, flows[4], [seconds(0, 1, "other", init_object_id="obj")])
    await add_segments(store, flows[1], [seconds(0, 1, "unrelated")])
    assert await store.object_references("obj", after_flow=None, limit=100) == [flows[0], flows[3], flows[4]]
    assert await store.object_references("unrelated", after_flow=None, limit=100) == [flows[1]]
    assert await store.object_references("nothing", after_flow=None, limit=100) == []


async def test_object_references_page_by_flow_id(store: MetadataStore) -> None:
    flows = [await add_flow(store, ordered_id(i)) for i in (7, 2, 9, 4, 5)]
    for i, f in enumerate(flows):
        await add_segments(store, f, [seconds(0, 1, "obj")], register=i == 0)
    expected = sorted(flows)
    assert await store.object_references("obj", after_flow=None, limit=2) == expected[:2]
    assert await store.object_references("obj", after_flow=expected[1], limit=2) == expected[2:4]
    assert await store.object_references("obj", after_flow=expected[3], limit=2) == expected[4:]
    assert await store.object_references("obj", after_flow=expected[4], limit=2) == []


async def test_object_references_can_be_limited_to_flows_with_given_tags(store: MetadataStore) -> None:
    tagged = await add_flow(store, ordered_id(1), tags={"team": ["red", "blue"]})
    other = await add_flow(store, ordered_id(2), tags={"team": "green"})
    bare = await add_flow(store, ordered_id(3))
    for i, f in enumerate((tagged, other, bare)):
        await add_segments(store, f, [seconds(0, 1, "obj")], register=i == 0)

    async def refs(tags: TagFilter) -> list[str]:
        return await store.object_references("obj", after_flow=None, limit=10, flow_tags=tags)

    assert await refs(TagFilter()) == [tagged, other, bare]
    assert await refs(TagFilter({"team": ("blue",)})) == [tagged]
    assert await refs(TagFilter({"team": ("green", "red")})) == [tagged, other]
    assert await refs(TagFilter(exists={"team": False})) == [bare]
    assert await refs(TagFilter(exists={"team": True})) == [tagged, other]


# -------------------------------------------------------------------------------------------- controlled copies


async def test_controlled_copies_are_added_once_and_listed_with_the_primary(store: MetadataStore) -> None:
    await registered_object(store)
    await store.add_controlled_copy("obj", OTHER_STORAGE)
    await store.add_controlled_copy("obj", OTHER_STORAGE)  # again: no-op
    await store.add_controlled_copy("obj", STORAGE)  # the primary: no-op
    record = (await store.get_objects(["obj"]))["obj"]
    assert record.storage_id == STORAGE and record.copies == (OTHER_STORAGE,)
    assert record.storage_ids == (STORAGE, OTHER_STORAGE)


async def test_adding_a_copy_of_an_unknown_object_is_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFound):
        await store.add_controlled_copy("missing", OTHER_STORAGE)


async def test_removing_copies_keeps_at_least_one_controlled_instance(store: MetadataStore) -> None:
    await registered_object(store)
    await store.add_controlled_copy("obj", OTHER_STORAGE)
    await store.add_controlled_copy("obj", THIRD_STORAGE)
    await store.remove_controlled_copy("obj", OTHER_STORAGE)
    assert set((await store.get_objects(["obj"]))["obj"].storage_ids) == {STORAGE, THIRD_STORAGE}
    await store.remove_controlled_copy("obj", STORAGE)  # the primary may go while a copy remains
    assert (await store.get_objects(["obj"]))["obj"].storage_ids == (THIRD_STORAGE,)
    with pytest.raises(Conflict):
        await store.remove_controlled_copy("obj", THIRD_STORAGE)
    with pytest.raises(NotFound):
        await store.remove_controlled_copy("obj", OTHER_STORAGE)
    with pytest.raises(NotFound):
        await store.remove_controlled_copy("missing", STORAGE)
    assert (await store.get_objects(["obj"]))["obj"].storage_ids == (THIRD_STORAGE,)


async def test_the_only_controlled_instance_cannot_be_removed(store: MetadataStore) -> None:
    _, before = await registered_object(store)
    with pytest.raises(Conflict):
        await store.remove_controlled_copy("obj", STORAGE)
    assert (await store.get_objects(["obj"]))["obj"] == before


# -------------------------------------------------------------------------------------------- uncontrolled


async def test_uncontrolled_instances_keep_registration_order_and_adding_again_is_a_no_op(
        store: MetadataStore) -> None:
    await registered_object(store, "a", "b", "c")
    await store.add_uncontrolled_instances("a", [("zeta", "https://z.example/a"), ("alpha", "https://a.example/a")])
    await store.add_uncontrolled_instances("a", [("alpha", "https://a.example/a"), ("mid", "https://m.example/a")])
    await store.add_uncontrolled_instances("b", [("one", "https://1.example/b")])
    found = await store.uncontrolled_instances(["a", "b", "c"])
    assert found["a"] == [("zeta", "https://z.example/a"), ("alpha", "https://a.example/a"),
                          ("mid", "https://m.example/a")]
    assert found["b"] == [("one", "https://1.example/b")]
    assert found.get("c", []) == []
    assert await store.uncontrolled_instances([]) == {}


async def test_a_label_naming_another_url_is_a_conflict_and_adds_nothing(store: MetadataStore) -> None:
    await registered_object(store, "a")
    await store.add_uncontrolled_instances("a", [("cdn", "https://cdn.example/a")])
    with pytest.raises(Conflict):
        await store.add_uncontrolled_instances("a", [("new", "https://new.example/a"), ("cdn", "https://else/a")])
    assert (await store.uncontrolled_instances(["a"]))["a"] == [("cdn", "https://cdn.example/a")]


async def test_removing_an_uncontrolled_instance_by_label(store: MetadataStore) -> None:
    await registered_object(store, "a")
    await store.add_uncontrolled_instances("a", [("x", "https://x/a"), ("y", "https://y/a"), ("z", "https://z/a")])
    await store.remove_uncontrolled_instance("a", "y")
    assert (await store.uncontrolled_instances(["a"]))["a"] == [("x", "https://x/a"), ("z", "https://z/a")]
    with pytest.raises(NotFound):
        await store.remove_uncontrolled_instance("a", "y")
    with pytest.raises(NotFound):
        await store.remove_uncontrolled_instance("missing", "x")
    await store.add_uncontrolled_instances("a", [("y", "https://other-y/a")])  # the label is free again
    assert (await store.uncontrolled_instances(["a"]))["a"] == [("x", "https://x/a"), ("z", "https://z/a"),
                                                                ("y", "https://other-y/a")]


# -------------------------------------------------------------------------------------------- awkward ids and sizes

AWKWARD = ["media/2025/clip 1.ts", "o'brien \"quoted\"", "50%_done*", "ünïcode-✓", "a,b;c", "x" * 200]


async def test_object_ids_are_opaque_strings(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    segs = [seconds(i, i + 1, object_id) for i, object_id in enumerate(AWKWARD)]
    await add_segments(store, flow_id, segs)
    assert set(await store.get_objects(AWKWARD)) == set(AWKWARD)
    assert await store.get_objects(["50%"]) == {}
    for seg in segs:
        assert await store.object_references(seg.object_id, after_flow=None, limit=10) == [flow_id]
        page = await store.list_segments(SegmentQuery(flow_id, INT64_MIN, INT64_MAX, object_id=seg.object_id))
        assert page.segments == [seg]
    await store.add_uncontrolled_instances(AWKWARD[1], [("it's", "https://example.com/a b?c=d&e=\"f\"")])
    assert (await store.uncontrolled_instances([AWKWARD[1]]))[AWKWARD[1]] == [
        ("it's", "https://example.com/a b?c=d&e=\"f\"")]
    deletion = await store.delete_segments(flow_id, INT64_MIN, INT64_MAX, AWKWARD[2], 500)
    assert [o.object_id for o in deletion.unreferenced_objects] == [AWKWARD[2]]
    assert set(await store.get_objects(AWKWARD)) == set(AWKWARD) - {AWKWARD[2]}


async def test_lookups_of_thousands_of_ids_answer_for_all_of_them(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    ids = [f"bulk-{i:05d}" for i in range(2_500)]
    await store.allocate_objects([allocation(i, flow_id, 10) for i in ids])
    asked = ids + [f"unknown-{i}" for i in range(500)]
    assert set(await store.get_objects(asked)) == set(ids)
    await store.commit_segments([SegmentCommit(flow_id, [], event_ids=ids[:1_500], now_ns=20)])
    assert await store.applied_event_ids(flow_id, asked) == set(ids[:1_500])
    context = (await store.segment_context([ContextRequest(flow_id, set(asked), set(asked), None)]))[flow_id]
    assert set(context.objects) == set(ids) and context.applied_event_ids == set(ids[:1_500])
    assert len(await store.expired_allocations(11, 10_000)) == 2_500
    assert len(await store.drop_allocations(asked)) == 2_500
    assert await store.get_objects(asked) == {}
