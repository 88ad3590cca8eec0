"""Commits and what the write rules read before them: applied event ids (at-least-once in, exactly-once
effect), multi-flow commits, and segment_context."""

from __future__ import annotations

import time

from agents.rules import SegmentRequest, plan_segments, segment_window
from schemas.timing import TimeRange
from stores.metadata import ContextRequest, MetadataStore, ObjectAllocation, SegmentCommit
from tests.contract.conftest import (
    STORAGE,
    S,
    add_flow,
    add_segments,
    all_segments,
    commit,
    new_id,
    seconds,
    span,
    spans,
)

Event = tuple[str, str]  # (event id, timerange)


async def apply_events(store: MetadataStore, flow_id: str, events: list[Event]) -> int:
    """What the agent does with a run of inline-media segment events (agents.ingest: _prepare, _plan, commit):
    read the context, skip events already applied, plan the rest, commit. Returns how many were accepted."""
    requests = {event_id: SegmentRequest(ref=i, object_id=f"obj-{event_id}", timerange=TimeRange.parse(tr),
                                         media_size=10)
                for i, (event_id, tr) in enumerate(events)}
    context = (await store.segment_context([ContextRequest(
        flow_id, set(requests), {r.object_id for r in requests.values()},
        segment_window(r.timerange for r in requests.values()))]))[flow_id]
    assert context.flow is not None
    fresh = [r for event_id, r in requests.items() if event_id not in context.applied_event_ids]
    plan = plan_segments(context.flow, fresh, context.objects, context.nearby, storage_id=STORAGE,
                         now_ns=time.time_ns(), init_objects=context.init_objects)
    event_of = {r.ref: event_id for event_id, r in requests.items()}
    await store.commit_segments([SegmentCommit(flow_id, [s for _, s in plan.accepted], plan.objects,
                                               [event_of[r.ref] for r, _ in plan.accepted], now_ns=500)])
    return len(plan.accepted)


async def test_redelivered_events_are_applied_once(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    events = [("e1", "[0:0_1:0)"), ("e2", "[1:0_2:0)"), ("e3", "[2:0_3:0)")]
    assert await apply_events(store, flow_id, events) == 3
    assert await apply_events(store, flow_id, events) == 0
    assert await apply_events(store, flow_id, [events[1], ("e4", "[3:0_4:0)"), events[0]]) == 1
    assert spans(await all_segments(store, flow_id)) == [(i * S, (i + 1) * S) for i in range(4)]
    assert (await store.get_flow(flow_id)).segment_count == 4
    assert await store.applied_event_ids(flow_id, ["e1", "e2", "e3", "e4", "e5"]) == {"e1", "e2", "e3", "e4"}


async def test_a_second_run_sees_the_first_runs_segments_and_objects(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    assert await apply_events(store, flow_id, [("e1", "[0:0_2:0)")]) == 1
    assert await apply_events(store, flow_id, [("e2", "[1:0_3:0)"), ("e3", "[2:0_3:0)")]) == 1  # e2 overlaps
    assert spans(await all_segments(store, flow_id)) == [(0, 2 * S), (2 * S, 3 * S)]
    assert set(await store.get_objects(["obj-e1", "obj-e2", "obj-e3"])) == {"obj-e1", "obj-e3"}


async def test_applied_event_ids_are_those_committed_for_that_flow(store: MetadataStore) -> None:
    flow_id, other = await add_flow(store), await add_flow(store)
    await add_segments(store, flow_id, [seconds(0, 1)], event_ids=["a", "b"])
    await store.commit_segments([commit(other, [], event_ids=["c"])])  # ids alone, e.g. a command with no segment
    assert await store.applied_event_ids(flow_id, ["a", "b", "c", "d"]) == {"a", "b"}
    assert await store.applied_event_ids(other, ["a", "c"]) == {"c"}
    assert await store.applied_event_ids(flow_id, []) == set()
    assert await store.applied_event_ids(new_id(), ["a"]) == set()


async def test_recording_the_same_event_ids_again_changes_nothing(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await store.commit_segments([commit(flow_id, [], event_ids=["x", "y"])])
    await store.commit_segments([commit(flow_id, [], event_ids=["y", "x"])])
    assert await store.applied_event_ids(flow_id, ["x", "y"]) == {"x", "y"}
    record = await store.get_flow(flow_id)
    assert (record.segment_count, record.extent) == (0, None)


async def test_one_commit_call_applies_several_flows(store: MetadataStore) -> None:
    flows = [await add_flow(store) for _ in range(3)]
    batches = {f: [seconds(10 * i + j, 10 * i + j + 1) for j in range(i + 1)] for i, f in enumerate(flows)}
    await store.commit_segments([commit(f, segs, event_ids=[f"{f}-{k}" for k in range(len(segs))], now_ns=700)
                                 for f, segs in batches.items()])
    for i, f in enumerate(flows):
        assert await all_segments(store, f) == batches[f]
        record = await store.get_flow(f)
        assert (record.segment_count, record.extent, record.segments_updated_ns) == (
            i + 1, (10 * i * S, (10 * i + i + 1) * S), 700)
        assert await store.applied_event_ids(f, [f"{f}-0", f"{flows[0]}-0"]) == {f"{f}-0"}


async def test_empty_commits_are_harmless(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    await store.commit_segments([])
    await store.commit_segments([commit(flow_id, [])])
    record = await store.get_flow(flow_id)
    assert (record.segment_count, record.extent, record.segments_updated_ns) == (0, None, None)


# -------------------------------------------------------------------------------------------- segment_context


async def test_segment_context_of_an_unknown_flow_has_no_flow(store: MetadataStore) -> None:
    unknown = new_id()
    contexts = await store.segment_context([ContextRequest(unknown, {"e"}, {"o"}, span("[0:0_1:0)"))])
    assert set(contexts) == {unknown}
    assert contexts[unknown].flow is None
    assert not contexts[unknown].nearby and not contexts[unknown].applied_event_ids


async def test_segment_context_reads_everything_the_rules_need_for_several_flows(store: MetadataStore) -> None:
    flow_id, other = await add_flow(store), await add_flow(store)
    long = seconds(-100, 0, "long")
    near = [seconds(0, 1, "a"), seconds(1, 2, "b", init_object_id="init-a"), seconds(5, 6, "c")]
    await add_segments(store, flow_id, [long, *near, seconds(6, 7, "d")], event_ids=["e1", "e2"])
    await add_segments(store, other, [seconds(3, 4, "x", init_object_id="init-x")], event_ids=["e3"])
    await store.allocate_objects([ObjectAllocation("alloc", STORAGE, flow_id, None, 10)])
    contexts = await store.segment_context([
        ContextRequest(flow_id, {"e1", "e3", "e9"}, {"a", "alloc", "missing", "init-a", "init-x"},
                       span("[-1:0_6:0)")),
        ContextRequest(other, set(), set(), None),
    ])
    ctx = contexts[flow_id]
    assert ctx.flow is not None and ctx.flow.id == flow_id and ctx.flow.segment_count == 5
    assert ctx.applied_event_ids == {"e1"}
    assert set(ctx.objects) == {"a", "alloc"}
    assert ctx.objects["a"].registered and not ctx.objects["alloc"].registered
    assert sorted(spans(ctx.nearby)) == spans([long, *near])  # the long one starts far before the window
    assert ctx.init_objects == {"init-a", "init-x"}  # init objects are global: an object has one role
    assert contexts[other].flow is not None and contexts[other].flow.id == other
    assert contexts[other].nearby == [] and contexts[other].applied_event_ids == set()


async def test_segment_context_nearby_excludes_segments_only_touching_the_window(store: MetadataStore) -> None:
    flow_id = await add_flow(store)
    segs = await add_segments(store, flow_id, [seconds(0, 1), seconds(2, 3), seconds(4, 5)])
    ctx = (await store.segment_context([ContextRequest(flow_id, set(), set(), (1 * S, 4 * S))]))[flow_id]
    assert ctx.nearby == [segs[1]]
