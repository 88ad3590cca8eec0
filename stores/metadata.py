"""The metadata-store contract, in domain terms, shaped so VAST DB can implement it efficiently.

Rules the contract keeps so every backend can honour it:
- Each method is one unit of work (one transaction); callers never span transactions.
- Time is int64 nanoseconds, half-open `[start_ns, end_ns)`. Timerange queries are three ANDed
  single-column range tests (flow == f, start < q_end, end > q_start) plus a lower bound on start
  from the flow's longest segment, which VAST can push down and SQL can serve from (flow, start).
- No reliance on unique keys or conditional writes: the single writer per flow (the agent owning
  the flow's partition) is what keeps segments from overlapping and ids unique.
- Ordering and paging are keyset on start_ns; a backend without ORDER BY sorts a bounded window.
- Failures are typed (`stores.errors`); infrastructure errors propagate unchanged.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from stores.errors import Conflict, NotFound


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A flow as stored: its document (TAMS wire form, without server-computed fields) and bookkeeping."""

    doc: dict[str, Any]
    created_ns: int
    metadata_updated_ns: int
    segments_updated_ns: int | None
    extent: tuple[int, int] | None  # half-open hull of all segments; None when the flow has none
    max_segment_ns: int
    segment_count: int
    collected_by: tuple[str, ...] = ()  # flows whose flow_collection lists this one (inferred)

    @property
    def id(self) -> str:
        return self.doc["id"]

    @property
    def read_only(self) -> bool:
        return bool(self.doc.get("read_only", False))

    @property
    def container(self) -> str | None:
        return self.doc.get("container")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    doc: dict[str, Any]
    created_ns: int
    updated_ns: int
    source_collection: tuple[dict[str, str], ...] = ()  # inferred from the flows' collections
    collected_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    doc: dict[str, Any]
    created_ns: int


@dataclass(frozen=True, slots=True)
class ObjectAllocation:
    """An object id handed out by POST /flows/{id}/storage, not yet used by a segment."""

    object_id: str
    storage_id: str
    flow_id: str
    content_type: str | None
    created_ns: int


@dataclass(slots=True)  # not frozen: built per segment or object, and a frozen init costs ~9x
class ObjectRecord:
    object_id: str
    storage_id: str
    allocated_by_flow: str | None
    content_type: str | None
    created_ns: int
    registered: bool
    timerange: str | None = None  # the object's own timeline, fixed at first registration
    key_frame_count: int | None = None
    init_object_id: str | None = None
    first_referenced_by_flow: str | None = None
    size: int | None = None
    checksum: str | None = None  # "<algorithm>:<value>" (e.g. "sha256:<hex>", "etag:<etag>") when known
    copies: tuple[str, ...] = ()  # storage ids of further controlled copies, besides `storage_id`

    @property
    def storage_ids(self) -> tuple[str, ...]:
        """Every backend holding controlled bytes of the object."""
        return (self.storage_id, *self.copies)


@dataclass(slots=True)  # not frozen: built per segment or object, and a frozen init costs ~9x
class ObjectRegistration:
    """First use of an object by a segment: fixes its timeline and creates the record if it is new."""

    object_id: str
    storage_id: str
    flow_id: str
    timerange: str
    key_frame_count: int | None
    init_object_id: str | None
    content_type: str | None
    size: int | None
    created_ns: int
    checksum: str | None = None


@dataclass(slots=True)  # not frozen: built per segment or object, and a frozen init costs ~9x
class StoredSegment:
    """A segment as stored, going in and coming out: `doc` is its JSON wire form without get_urls,
    init_object and object_timerange, which are added when it is read."""

    start_ns: int
    end_ns: int
    object_id: str
    init_object_id: str | None
    object_timerange: str | None
    doc: bytes


@dataclass(frozen=True, slots=True)
class SegmentQuery:
    flow_id: str
    start_ns: int  # half-open overlap window
    end_ns: int
    object_id: str | None = None
    reverse: bool = False
    limit: int = 100
    after_start_ns: int | None = None  # keyset cursor: start_ns of the last segment of the previous page


@dataclass(frozen=True, slots=True)
class SegmentPage:
    segments: list[StoredSegment]
    more: bool


@dataclass(frozen=True, slots=True)
class SegmentCommit:
    """Everything one batch changes for one flow."""

    flow_id: str
    segments: Sequence[StoredSegment]
    objects: Sequence[ObjectRegistration] = ()
    event_ids: Sequence[str] = ()
    now_ns: int = 0


@dataclass(frozen=True, slots=True)
class ContextRequest:
    """What the write rules need to know about one flow before applying a run of segments."""

    flow_id: str
    event_ids: Collection[str]
    object_ids: Collection[str]  # media and init object ids the new segments name
    window: tuple[int, int] | None  # half-open span of the new segments; None when there are none


@dataclass(frozen=True, slots=True)
class SegmentContext:
    flow: FlowRecord | None  # None when the flow does not exist
    applied_event_ids: set[str]
    objects: dict[str, ObjectRecord]
    nearby: list[StoredSegment]  # stored segments overlapping the window, in any order
    init_objects: set[str] = field(default_factory=set)  # requested ids some segment uses as its init object


@dataclass(frozen=True, slots=True)
class Deletion:
    """What a delete removed: the span of the deleted segments, and objects nothing refers to any more."""

    segments: int
    span: tuple[int, int] | None  # half-open hull of the deleted segments
    unreferenced_objects: list[ObjectRecord]  # records already dropped; their controlled bytes are to be deleted
    source_deleted: str | None = None  # the source id, when its last flow went
    more: bool = False  # covered segments remain: the delete stopped at its limit


@dataclass(frozen=True, slots=True)
class TagFilter:
    """`tag.{name}=v1,v2` (any listed value, any element of an array tag) and `tag_exists.{name}`."""

    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exists: dict[str, bool] = field(default_factory=dict)


def without_copy(object_id: str, primary: str, copies: Sequence[str], storage_id: str
                 ) -> tuple[str, list[str]]:
    """The object's (primary storage id, further copies) once the copy on `storage_id` is forgotten; the first
    remaining copy becomes primary. Raises NotFound for no copy there, Conflict for the only controlled one."""
    if storage_id == primary:
        if not copies:
            raise Conflict(f"storage {storage_id} holds the only controlled instance of object {object_id}")
        return copies[0], list(copies[1:])
    if storage_id in copies:
        return primary, [c for c in copies if c != storage_id]
    raise NotFound(f"object {object_id} has no controlled instance on storage {storage_id}")


SortKey = tuple[int, int | str, str]
"""(missing, value, id): ascending on it is the TAMS order (ADR-0052): dates newest first (their value
is negated), strings ascending, items without the key last by id. `reverse_order` is descending."""

DATE_SORTS = {"created": "created_ns", "metadata_updated": "updated_ns", "updated": "updated_ns"}


def sort_key(sort_by: str, record_id: str, created_ns: int, updated_ns: int, label: str | None) -> SortKey:
    """The sort key of one flow or source (`updated_ns` is a flow's metadata_updated or a source's updated)."""
    if sort_by == "label":
        return (0, label, record_id) if label is not None else (1, "", record_id)
    return (0, -(created_ns if sort_by == "created" else updated_ns), record_id)


@dataclass(frozen=True, slots=True)
class Listing:
    """Order and keyset position of a flow or source listing."""

    sort_by: str = "created"  # created | metadata_updated (flows) | updated (sources) | label
    reverse: bool = False
    after: SortKey | None = None  # the key of the last item of the previous page


@dataclass(frozen=True, slots=True)
class FlowQuery:
    """Flows in `listing` order; every filter given must hold."""

    limit: int = 100
    listing: Listing = field(default_factory=Listing)
    source_id: str | None = None
    format: str | None = None
    codec: str | None = None
    label: str | None = None
    status: str | None = None
    frame_width: int | None = None
    frame_height: int | None = None
    init_segments: bool | None = None
    profile_id: str | None = None
    collected_by_ids: tuple[str, ...] | None = None  # () means flows no collection lists
    tags: TagFilter = field(default_factory=TagFilter)
    overlapping: tuple[int, int] | None = None  # flows whose timerange (hull of their segments) overlaps this window
    empty_only: bool = False  # `timerange=()`: flows without segments


@dataclass(frozen=True, slots=True)
class SourceQuery:
    limit: int = 100
    listing: Listing = field(default_factory=Listing)
    collected_by_ids: tuple[str, ...] | None = None  # () means top-level sources
    format: str | None = None
    label: str | None = None
    tags: TagFilter = field(default_factory=TagFilter)


class MetadataStore(Protocol):
    async def open(self) -> None:
        """Create the schema if needed (additive migrations only)."""
        ...

    async def close(self) -> None: ...

    # flows and sources
    async def get_flow(self, flow_id: str) -> FlowRecord:
        """Raises NotFound."""
        ...

    async def put_flow(self, doc: dict[str, Any], now_ns: int) -> bool:
        """Create or replace a flow, creating its source implicitly; True when the flow was created.
        Raises Conflict for a format that differs from the source's or flow_collection members that do not exist."""
        ...

    async def list_flows(self, query: FlowQuery) -> list[FlowRecord]: ...

    async def get_source(self, source_id: str) -> SourceRecord:
        """Raises NotFound."""
        ...

    async def put_source(self, doc: dict[str, Any], now_ns: int) -> None:
        """Replace an existing source's document (sources are created implicitly by put_flow); raises NotFound."""
        ...

    async def list_sources(self, query: SourceQuery) -> list[SourceRecord]:
        """Sources in `query.listing` order; every filter given must hold."""
        ...

    # profiles (immutable)
    async def create_profile(self, doc: dict[str, Any], now_ns: int) -> None:
        """Raises Conflict if a profile with that id exists."""
        ...

    async def get_profile(self, profile_id: str) -> ProfileRecord:
        """Raises NotFound."""
        ...

    async def list_profiles(self, *, format: str | None, codec: str | None, label: str | None, after_id: str | None,
                            limit: int) -> list[ProfileRecord]: ...

    # service
    async def get_service_info(self) -> dict[str, Any]:
        """The service's editable fields (`name`, `description`); empty until first set."""
        ...

    async def put_service_info(self, info: dict[str, Any]) -> None: ...

    # objects
    async def allocate_objects(self, allocations: Sequence[ObjectAllocation]) -> None:
        """Record new allocations; raises Conflict (and records none) if any id exists already."""
        ...

    async def get_objects(self, object_ids: Collection[str]) -> dict[str, ObjectRecord]:
        """The known objects among `object_ids` (missing ids are simply absent)."""
        ...

    async def expired_allocations(self, created_before_ns: int, limit: int) -> list[ObjectRecord]:
        """Allocations no segment uses (as media object or as init object; init objects are never registered),
        created before `created_before_ns` (any order, at most `limit`)."""
        ...

    async def drop_allocations(self, object_ids: Collection[str]) -> list[ObjectRecord]:
        """Drop the records of those objects that are still allocations no segment uses (as media or init object);
        returns the dropped records."""
        ...

    async def add_controlled_copy(self, object_id: str, storage_id: str) -> None:
        """Record a complete controlled copy on another backend (again is a no-op); raises NotFound for no object."""
        ...

    async def remove_controlled_copy(self, object_id: str, storage_id: str) -> None:
        """Forget a controlled copy; raises NotFound if the object has none on that backend, Conflict if it is the
        object's only controlled instance (its primary `storage_id` with no copies)."""
        ...

    async def object_references(self, object_id: str, *, after_flow: str | None, limit: int,
                                flow_tags: TagFilter | None = None) -> list[str]:
        """Ids of flows with a segment using the object as media or init object, ascending after `after_flow`,
        limited to flows whose tags pass `flow_tags`."""
        ...

    async def add_uncontrolled_instances(self, object_id: str, instances: Sequence[tuple[str, str]]) -> None:
        """Register (label, url) pairs (again is a no-op); raises Conflict if a label names another URL."""
        ...

    async def remove_uncontrolled_instance(self, object_id: str, label: str) -> None:
        """Raises NotFound if the object has no uncontrolled instance with that label."""
        ...

    async def uncontrolled_instances(self, object_ids: Collection[str]) -> dict[str, list[tuple[str, str]]]:
        """(label, url) of each object's uncontrolled instances, in registration order."""
        ...

    # segments
    async def applied_event_ids(self, flow_id: str, event_ids: Collection[str]) -> set[str]:
        """Which of these event ids were already applied to the flow."""
        ...

    async def segment_context(self, requests: Sequence[ContextRequest]) -> dict[str, SegmentContext]:
        """Everything the write rules read for a batch, for many flows, from one consistent snapshot."""
        ...

    async def commit_segments(self, commits: Sequence[SegmentCommit]) -> None:
        """For each flow: insert segments, register objects, record event ids, update flow stats.

        All of it is one transaction, so a batch spanning many flows costs one durable commit.
        """
        ...

    async def delete_segments(self, flow_id: str, start_ns: int, end_ns: int, object_id: str | None,
                              now_ns: int, limit: int | None = None) -> Deletion:
        """Delete the flow's segments completely covered by the half-open window (and using `object_id`),
        the earliest `limit` of them at most, update the flow's stats, and drop the records of objects
        no segment or media object refers to."""
        ...

    async def put_deletion_request(self, doc: dict[str, Any], now_ns: int) -> None:
        """Create or replace a deletion request (TAMS wire form, keyed by `doc["id"]`)."""
        ...

    async def get_deletion_request(self, request_id: str) -> dict[str, Any]:
        """Raises NotFound."""
        ...

    async def list_deletion_requests(self, *, after_id: str | None, limit: int) -> list[dict[str, Any]]: ...

    async def delete_flow(self, flow_id: str) -> Deletion:
        """Delete the flow and all its segments, unreferenced objects, the flow's allocations no segment uses,
        and its source if it was the last flow. Raises NotFound."""
        ...

    async def list_segments(self, query: SegmentQuery) -> SegmentPage:
        """One page of segments overlapping the window, ordered by start (descending if reverse)."""
        ...

