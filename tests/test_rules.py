"""The segment write rules as plain functions, without Kafka or a store."""

from __future__ import annotations

from agents.rules import SegmentRequest, plan_segments, segment_window
from schemas.deadletter import RejectReason
from schemas.timing import NS_PER_SEC, TimeRange
from stores.metadata import FlowRecord, ObjectRecord, StoredSegment

FLOW = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"


def flow(**doc: object) -> FlowRecord:
    return FlowRecord(doc={"id": FLOW, "container": "video/mp2t", **doc}, created_ns=0, metadata_updated_ns=0,
                      segments_updated_ns=None, extent=None, max_segment_ns=0, segment_count=0)


def allocated(object_id: str, by: str = FLOW) -> ObjectRecord:
    return ObjectRecord(object_id, "store", by, None, 0, registered=False)


def registered(object_id: str, timerange: str, key_frames: int | None = None) -> ObjectRecord:
    return ObjectRecord(object_id, "store", FLOW, None, 0, registered=True, timerange=timerange,
                        key_frame_count=key_frames)


def request(ref: int, object_id: str, timerange: str, **fields: object) -> SegmentRequest:
    return SegmentRequest(ref=ref, object_id=object_id, timerange=TimeRange.parse(timerange), **fields)  # type: ignore[arg-type]


def stored(timerange: str) -> StoredSegment:
    start, end = TimeRange.parse(timerange).half_open()
    return StoredSegment(start, end, "old", None, None, b"{}")


def reasons(plan) -> list[tuple[int, RejectReason]]:  # type: ignore[no-untyped-def]
    return [(r.ref, rejection.reason) for r, rejection in plan.rejected]


def test_adjacent_and_instantaneous_segments_do_not_overlap_but_later_duplicates_do() -> None:
    objects = {o: allocated(o) for o in ("a", "b", "c")}
    plan = plan_segments(flow(), [request(0, "a", "[1:0_2:0)"), request(1, "b", "[2:0]"),
                                  request(2, "c", "[1:500000000_1:600000000)")],
                         objects, [], storage_id="s", now_ns=1)
    assert [r.ref for r, _ in plan.accepted] == [0, 1]
    assert reasons(plan) == [(2, RejectReason.OVERLAP)]


def test_a_stored_neighbour_refuses_an_overlapping_segment_and_allows_the_next_one() -> None:
    objects = {o: allocated(o) for o in ("a", "b")}
    plan = plan_segments(flow(), [request(0, "a", "[9:0_11:0)"), request(1, "b", "[10:0_12:0)")], objects,
                         [stored("[0:0_10:0)")], storage_id="s", now_ns=1)
    assert reasons(plan) == [(0, RejectReason.OVERLAP)]
    assert [r.ref for r, _ in plan.accepted] == [1]


def test_objects_must_be_allocated_for_this_flow_before_first_use() -> None:
    plan = plan_segments(flow(), [request(0, "missing", "[0:0_1:0)"), request(1, "theirs", "[1:0_2:0)"),
                                  request(2, "inline", "[2:0_3:0)", media_size=4)],
                         {"theirs": allocated("theirs", by=OTHER)}, [], storage_id="s", now_ns=1)
    assert reasons(plan) == [(0, RejectReason.MISSING_OBJECT), (1, RejectReason.OBJECT_CONFLICT)]
    assert [o.object_id for o in plan.objects] == ["inline"]


def test_first_use_fixes_the_object_timerange_as_timerange_minus_ts_offset() -> None:
    plan = plan_segments(flow(), [request(0, "a", "[10:0_12:0)", ts_offset=10 * NS_PER_SEC)],
                         {"a": allocated("a")}, [], storage_id="s", now_ns=1)
    (registration,) = plan.objects
    assert registration.timerange == "[0:0_2:0)"
    assert plan.accepted[0][1].object_timerange == "[0:0_2:0)"


def test_reuse_must_stay_inside_the_object_and_keep_its_properties() -> None:
    objects = {"a": registered("a", "[0:0_10:0)", key_frames=5)}
    plan = plan_segments(flow(), [
        request(0, "a", "[20:0_22:0)", ts_offset=20 * NS_PER_SEC),  # uses [0:0_2:0) of the object: fine
        request(1, "a", "[30:0_42:0)", ts_offset=30 * NS_PER_SEC),  # [0:0_12:0) is past the object's end
        request(2, "a", "[50:0_51:0)", ts_offset=50 * NS_PER_SEC, key_frame_count=9),
    ], objects, [], storage_id="s", now_ns=1)
    assert [r.ref for r, _ in plan.accepted] == [0]
    assert reasons(plan) == [(1, RejectReason.OBJECT_CONFLICT), (2, RejectReason.OBJECT_CONFLICT)]
    assert plan.objects == []  # a registered object is not registered again


def test_read_only_and_containerless_flows_refuse_every_segment() -> None:
    objects = {"a": allocated("a")}
    for record, reason in ((flow(read_only=True), RejectReason.FLOW_READ_ONLY),
                           (flow(container=None), RejectReason.FLOW_HAS_NO_CONTAINER)):
        plan = plan_segments(record, [request(0, "a", "[0:0_1:0)")], objects, [], storage_id="s", now_ns=1)
        assert reasons(plan) == [(0, reason)] and not plan.accepted


def test_unbounded_and_empty_segment_timeranges_are_invalid() -> None:
    objects = {"a": allocated("a")}
    plan = plan_segments(flow(), [request(0, "a", "[0:0_"), request(1, "a", "()"), request(2, "a", "_")], objects,
                         [], storage_id="s", now_ns=1)
    assert reasons(plan) == [(i, RejectReason.INVALID_TIMERANGE) for i in range(3)]
    assert segment_window(r for r in [TimeRange.parse("[0:0_"), TimeRange.never()]) is None
    assert segment_window([TimeRange.parse("[1:0_2:0)"), TimeRange.parse("[5:0]")]) == (
        NS_PER_SEC, 5 * NS_PER_SEC + 1)


def test_init_and_media_roles_are_exclusive() -> None:
    record = flow(essence_parameters={"init_segments": True})
    objects = {o: allocated(o) for o in ("init", "a", "b")} | {"media": registered("media", "[0:0_10:0)")}
    plan = plan_segments(record, [
        request(0, "a", "[0:0_1:0)", init_object_id="init"),
        request(1, "init", "[1:0_2:0)", init_object_id="init"),   # an init object used as media
        request(2, "b", "[2:0_3:0)", init_object_id="a"),          # a media object used as init
        request(3, "b", "[3:0_4:0)", init_object_id="media"),      # a registered media object as init
    ], objects, [], storage_id="s", now_ns=1)
    assert [r.ref for r, _ in plan.accepted] == [0]
    assert reasons(plan) == [(1, RejectReason.OBJECT_CONFLICT), (2, RejectReason.OBJECT_CONFLICT),
                             (3, RejectReason.OBJECT_CONFLICT)]
    stored_roles = plan_segments(record, [request(0, "b", "[5:0_6:0)", init_object_id="x")], objects, [],
                                 storage_id="s", now_ns=1, init_objects={"b"})
    assert reasons(stored_roles) == [(0, RejectReason.OBJECT_CONFLICT)]


def test_init_segments_flag_and_init_objects_go_together() -> None:
    objects = {o: allocated(o) for o in ("a", "b", "init")}
    with_init = plan_segments(flow(essence_parameters={"init_segments": True}),
                              [request(0, "a", "[0:0_1:0)"), request(1, "b", "[1:0_2:0)", init_object_id="init")],
                              objects, [], storage_id="s", now_ns=1)
    assert reasons(with_init) == [(0, RejectReason.INIT_SEGMENTS_MISMATCH)]
    without = plan_segments(flow(), [request(0, "a", "[0:0_1:0)", init_object_id="init")], objects, [],
                            storage_id="s", now_ns=1)
    assert reasons(without) == [(0, RejectReason.INIT_SEGMENTS_MISMATCH)]


def test_a_segment_longer_than_int64_nanoseconds_is_rejected_not_stored() -> None:
    requests = [SegmentRequest(ref=0, object_id="a", timerange=TimeRange.parse("[-9223372036:0_9223372036:0)"))]
    plan = plan_segments(flow(), requests, {"a": allocated("a")}, [], storage_id="s", now_ns=1)
    assert not plan.accepted
    assert plan.rejected[0][1].reason is RejectReason.INVALID_TIMERANGE
