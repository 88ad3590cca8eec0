"""The segment write rules, as plain functions: what a batch of segment registrations does to a flow.

They run inside the agent that owns the flow (the single writer), so reading the current state,
deciding, and committing cannot race with another writer. They do no I/O: the caller loads the
flow, its objects and the segments near the new ones, and commits what the plan says.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from schemas.deadletter import RejectReason
from schemas.timing import INT64_MAX, TimeRange, format_timestamp
from stores.metadata import FlowRecord, ObjectRecord, ObjectRegistration, StoredSegment


class Rejected(Exception):
    """A registration the rules refuse; `reason` is machine-readable, the message says what was wrong."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)  # not frozen: built per segment, and a frozen init costs ~9x
class SegmentRequest:
    """One segment to register, from an ingest event or a REST POST; `ref` identifies it to the caller."""

    ref: int
    object_id: str
    timerange: TimeRange
    ts_offset: int | None = None
    last_duration: int | None = None
    key_frame_count: int | None = None
    init_object_id: str | None = None
    object_timerange: TimeRange | None = None
    sample_offset: int | None = None
    sample_count: int | None = None
    media_size: int | None = None  # set when the agent stores the bytes itself (inline media)


@dataclass
class SegmentPlan:
    accepted: list[tuple[SegmentRequest, StoredSegment]] = field(default_factory=list)
    objects: list[ObjectRegistration] = field(default_factory=list)
    rejected: list[tuple[SegmentRequest, Rejected]] = field(default_factory=list)


def check_flow_writable(flow: FlowRecord) -> None:
    """Segments can only be written to a flow that has its own container and is not read-only."""
    if flow.read_only:
        raise Rejected(RejectReason.FLOW_READ_ONLY, f"flow {flow.id} is read-only")
    if not flow.container:
        raise Rejected(RejectReason.FLOW_HAS_NO_CONTAINER, f"flow {flow.id} has no container, so it has no segments")


def segment_window(timeranges: Iterable[TimeRange]) -> tuple[int, int] | None:
    """The half-open span of all storable timeranges, to load the segments they may overlap."""
    spans = [t.half_open() for t in timeranges if _storable(t)]
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


def plan_segments(
    flow: FlowRecord,
    requests: Sequence[SegmentRequest],
    objects: Mapping[str, ObjectRecord],
    nearby: Iterable[StoredSegment],
    *,
    storage_id: str,
    now_ns: int,
    init_objects: Iterable[str] = (),
) -> SegmentPlan:
    """Decide, request by request and in order, which segments to store; later requests see earlier ones.

    `init_objects` are the named ids some stored segment already uses as its init object."""
    plan = SegmentPlan()
    try:
        check_flow_writable(flow)
    except Rejected as rejection:
        plan.rejected = [(r, rejection) for r in requests]
        return plan
    occupied = _Occupancy(nearby)
    first_uses: dict[str, ObjectRegistration] = {}
    init_roles = set(init_objects)
    wants_init = bool((flow.doc.get("essence_parameters") or {}).get("init_segments"))
    for request in requests:
        try:
            start, end = _check_timerange(request.timerange)
            _check_roles(request, objects, first_uses, init_roles)
            object_timerange, init_object_id = _check_object(flow, request, objects.get(request.object_id),
                                                             first_uses)
            if wants_init != (init_object_id is not None):
                raise Rejected(RejectReason.INIT_SEGMENTS_MISMATCH,
                               f"flow {flow.id} {'needs' if wants_init else 'has no'} init segments "
                               f"(essence_parameters.init_segments), but the segment "
                               f"{'has no' if wants_init else 'names an'} init object")
            occupied.claim(start, end, request.timerange)
        except Rejected as rejection:
            plan.rejected.append((request, rejection))
            continue
        timerange_text = str(request.timerange)
        object_timerange_text = timerange_text if object_timerange is request.timerange else str(object_timerange)
        if request.object_id not in first_uses and _is_first_use(objects.get(request.object_id)):
            registration = ObjectRegistration(
                object_id=request.object_id, storage_id=storage_id, flow_id=flow.id, timerange=object_timerange_text,
                key_frame_count=request.key_frame_count, init_object_id=request.init_object_id,
                content_type=flow.container, size=request.media_size, created_ns=now_ns,
            )
            first_uses[request.object_id] = registration
            plan.objects.append(registration)
        if init_object_id is not None:
            init_roles.add(init_object_id)
        plan.accepted.append((request, StoredSegment(
            start_ns=start, end_ns=end, object_id=request.object_id, init_object_id=init_object_id,
            object_timerange=object_timerange_text, doc=segment_doc(request, timerange_text))))
    return plan


def segment_doc(request: SegmentRequest, timerange_text: str | None = None) -> bytes:
    """The segment's TAMS wire form, without get_urls, init_object and object_timerange (added on read)."""
    doc: dict[str, object] = {"object_id": request.object_id, "timerange": timerange_text or str(request.timerange)}
    if request.ts_offset is not None:
        doc["ts_offset"] = format_timestamp(request.ts_offset)
    if request.last_duration is not None:
        doc["last_duration"] = format_timestamp(request.last_duration)
    if request.key_frame_count is not None:
        doc["key_frame_count"] = request.key_frame_count
    if request.sample_offset is not None:
        doc["sample_offset"] = request.sample_offset
    if request.sample_count is not None:
        doc["sample_count"] = request.sample_count
    return orjson.dumps(doc)


def _storable(timerange: TimeRange) -> bool:
    return not timerange.is_empty and timerange.is_bounded and timerange.fits_int64


def _check_timerange(timerange: TimeRange) -> tuple[int, int]:
    if timerange.is_empty:
        raise Rejected(RejectReason.INVALID_TIMERANGE, "a segment timerange must not be empty")
    if not timerange.is_bounded:
        raise Rejected(RejectReason.INVALID_TIMERANGE, f"a segment timerange must be bounded, got {timerange}")
    if not timerange.fits_int64:
        raise Rejected(RejectReason.INVALID_TIMERANGE, f"timerange {timerange} is outside the storable range")
    start, end = timerange.half_open()
    if end - start > INT64_MAX:
        raise Rejected(RejectReason.INVALID_TIMERANGE, f"timerange {timerange} is longer than about 292 years")
    return start, end


def _check_roles(request: SegmentRequest, objects: Mapping[str, ObjectRecord],
                 first_uses: Mapping[str, ObjectRegistration], init_roles: set[str]) -> None:
    """An object is a media object or an init object, never both."""
    if request.object_id in init_roles:
        raise Rejected(RejectReason.OBJECT_CONFLICT,
                       f"object {request.object_id} is used as an init object; it cannot be a media object")
    init = request.init_object_id
    if init is not None and (init in first_uses or (init in objects and objects[init].registered)):
        raise Rejected(RejectReason.OBJECT_CONFLICT, f"object {init} is a media object; it cannot be an init object")


def _is_first_use(record: ObjectRecord | None) -> bool:
    return record is None or not record.registered


def _check_object(
    flow: FlowRecord, request: SegmentRequest, record: ObjectRecord | None, first_uses: Mapping[str, ObjectRegistration]
) -> tuple[TimeRange, str | None]:
    """Check the object can back this segment; return the object's own timerange and init object."""
    used = request.timerange.shift(-request.ts_offset) if request.ts_offset else request.timerange
    pending = first_uses.get(request.object_id)
    if pending is not None:  # registered earlier in this same batch
        return _check_reuse(request, TimeRange.parse(pending.timerange), pending.key_frame_count,
                            pending.init_object_id, used), pending.init_object_id
    if record is None:
        if request.media_size is None:
            raise Rejected(RejectReason.MISSING_OBJECT,
                           f"object {request.object_id} was never allocated (POST /flows/{{id}}/storage)")
        return request.object_timerange or used, request.init_object_id
    if not record.registered:
        if record.allocated_by_flow not in (None, flow.id):
            raise Rejected(RejectReason.OBJECT_CONFLICT,
                           f"object {request.object_id} was allocated for flow {record.allocated_by_flow}; "
                           "its first segment must be on that flow")
        return request.object_timerange or used, request.init_object_id
    if request.media_size is not None:
        raise Rejected(RejectReason.OBJECT_CONFLICT,
                       f"object {request.object_id} exists already; inline media cannot replace it")
    return _check_reuse(request, TimeRange.parse(record.timerange or "_"), record.key_frame_count,
                        record.init_object_id, used), record.init_object_id


def _check_reuse(request: SegmentRequest, stored: TimeRange, key_frames: int | None, init_object: str | None,
                 used: TimeRange) -> TimeRange:
    """Reusing an object: it must cover the part used, and object-level properties cannot change."""
    if request.object_timerange is not None and request.object_timerange != stored:
        raise Rejected(RejectReason.OBJECT_CONFLICT,
                       f"object {request.object_id} has object_timerange {stored}, not {request.object_timerange}")
    if request.key_frame_count is not None and key_frames is not None and request.key_frame_count != key_frames:
        raise Rejected(RejectReason.OBJECT_CONFLICT,
                       f"object {request.object_id} has key_frame_count {key_frames}, not {request.key_frame_count}")
    if request.init_object_id is not None and request.init_object_id != init_object:
        raise Rejected(RejectReason.OBJECT_CONFLICT,
                       f"object {request.object_id} has init object {init_object}, not {request.init_object_id}")
    if not stored.covers(used):
        raise Rejected(RejectReason.OBJECT_CONFLICT,
                       f"timerange - ts_offset = {used} is not inside object {request.object_id}'s timerange {stored}")
    return stored


class _Occupancy:
    """The disjoint half-open intervals already taken in the flow, sorted, for O(log n) overlap checks."""

    def __init__(self, segments: Iterable[StoredSegment]) -> None:
        taken = sorted((s.start_ns, s.end_ns) for s in segments)
        self._starts = [s for s, _ in taken]
        self._ends = [e for _, e in taken]

    def claim(self, start: int, end: int, timerange: TimeRange) -> None:
        # Intervals are disjoint and sorted, so only the last one starting before `end` can overlap.
        i = bisect_left(self._starts, end) - 1
        if i >= 0 and self._ends[i] > start:
            taken = TimeRange.from_half_open(self._starts[i], self._ends[i])
            raise Rejected(RejectReason.OVERLAP, f"timerange {timerange} overlaps the existing segment {taken}")
        at = bisect_left(self._starts, start)
        self._starts.insert(at, start)
        self._ends.insert(at, end)


__all__ = ["Rejected", "SegmentPlan", "SegmentRequest", "check_flow_writable", "plan_segments", "segment_doc",
           "segment_window"]
