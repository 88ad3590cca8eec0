"""The agent's work on one batch of messages from `tams.ingest.segments` and `tams.commands`.

Flows with only segment events in the batch are handled together: one consistent read of what the
write rules need (flow, applied event ids, objects, neighbouring segments), a plan per flow, one
`put_many` of inline media, one metadata transaction, then announcements on `tams.events` and dead
letters for what was rejected. A flow with commands in the batch is applied strictly in message
order. `decode` is pure CPU work and `apply` does the rest; the consumer commits the batch's offsets
only after `apply` returns, i.e. once all of that, replies included, is durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from pydantic import ValidationError

from agents import metrics
from agents.documents import attributed, only_read_only_changes, patch_document, with_metadata_version
from agents.objects import ObjectBytes
from agents.rules import (
    Rejected,
    SegmentPlan,
    SegmentRequest,
    check_flow_writable,
    plan_segments,
    segment_doc,
    segment_window,
)
from schemas.commands import Command, CommandKind, CommandReply, FieldPatch
from schemas.deadletter import DeadLetter, RejectReason
from schemas.events import rfc3339_from_ns, rfc3339_now
from schemas.ingest import (
    FramingError,
    IngestSegmentEvent,
    InvalidEvent,
    MediaTooLarge,
    decode_ingest_event,
    inline_object_id,
)
from schemas.resources import FlowAdapter, FlowSegmentPost, Profile, ServicePost, Source
from schemas.timing import INT64_MAX, INT64_MIN, NS_PER_SEC, TimeRange
from schemas.validation import summarise_errors
from stores.backends import StorageBackends
from stores.errors import Conflict, MediaNotFound, NotFound
from stores.media import MediaInfo
from stores.metadata import (
    ContextRequest,
    FlowRecord,
    MetadataStore,
    ObjectAllocation,
    ObjectRegistration,
    SegmentCommit,
    SegmentContext,
)
from topics.catalogue import COMMANDS, INGEST_SEGMENTS
from topics.partitioning import owning_partition
from topics.producer import Delivery, Publisher

log = logging.getLogger(__name__)

# Tries at committing a batch whose objects a concurrent delete (in another flow's agent) may drop meanwhile.
COMMIT_ATTEMPTS = 3
TIMERANGE_FIELDS = frozenset({"timerange", "object_timerange", "ts_offset", "last_duration"})


class Message(Protocol):
    """A consumed Kafka record, as the agent needs it (aiokafka's ConsumerRecord is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SegmentEvent:
    message: Message
    event: IngestSegmentEvent
    media: bytes | None


@dataclass(frozen=True, slots=True)
class CommandItem:
    message: Message
    command: Command


Item = SegmentEvent | CommandItem


@dataclass(slots=True)
class DecodedBatch:
    """A batch parsed and grouped by flow, not yet applied."""

    size: int
    runs: dict[str, list[Item]] = field(default_factory=dict)
    undecodable: list[tuple[Message, Rejected]] = field(default_factory=list)
    misrouted: list[tuple[Message, int]] = field(default_factory=list)  # with the partition that owns the flow

    def extend(self, later: DecodedBatch) -> DecodedBatch:
        """This batch followed by `later` (each flow's items stay in order)."""
        self.size += later.size
        for flow_id, items in later.runs.items():
            self.runs.setdefault(flow_id, []).extend(items)
        self.undecodable += later.undecodable
        self.misrouted += later.misrouted
        return self


@dataclass(frozen=True, slots=True)
class FlowWork:
    """One flow's planned run of segment events; `plan` is None when the flow does not exist."""

    flow_id: str
    fresh: list[SegmentEvent]
    repeats: list[SegmentEvent]
    plan: SegmentPlan | None
    now_ns: int

    def inline_media(self) -> list[tuple[str, bytes]]:
        if self.plan is None:
            return []
        return [(r.object_id, media) for r, _ in self.plan.accepted
                if (media := self.fresh[r.ref].media) is not None]

    def with_object_facts(self, facts: dict[str, MediaInfo]) -> FlowWork:
        if self.plan is None or not any(o.object_id in facts for o in self.plan.objects):
            return self
        return replace(self, plan=replace(self.plan, objects=with_facts(self.plan.objects, facts)))

    def commit(self) -> SegmentCommit:
        assert self.plan is not None
        return SegmentCommit(
            flow_id=self.flow_id, segments=[s for _, s in self.plan.accepted], objects=self.plan.objects,
            event_ids=[self.fresh[r.ref].event.event_id for r, _ in self.plan.accepted], now_ns=self.now_ns)


class IngestProcessor:
    """Applies batches of messages; owns no Kafka consumer, so tests and the worker's consumer share it."""

    def __init__(self, store: MetadataStore, backends: StorageBackends, publisher: Publisher, *,
                 partitions: dict[str, int], max_media_bytes: int, delete_chunk: int = 10_000,
                 media_retry_max_s: float = 30.0) -> None:
        self.store = store
        self.objects = ObjectBytes(backends, retry_max_s=media_retry_max_s)
        self.publisher = publisher
        self.storage_id = backends.default.id
        self.partitions = partitions
        self.max_media_bytes = max_media_bytes
        self.delete_chunk = delete_chunk
        self._deliveries: list[Delivery] = []
        self._handlers: dict[CommandKind, Callable[[Command], Awaitable[dict[str, Any]]]] = {
            CommandKind.PUT_FLOW: self._put_flow,
            CommandKind.ALLOCATE_STORAGE: self._allocate,
            CommandKind.ADD_SEGMENTS: self._add_segments,
            CommandKind.UPDATE_FLOW: self._update_flow,
            CommandKind.UPDATE_SOURCE: self._update_source,
            CommandKind.DELETE_SEGMENTS: self._delete_segments,
            CommandKind.DELETE_FLOW: self._delete_flow,
            CommandKind.UPDATE_SERVICE: self._update_service,
            CommandKind.CREATE_PROFILE: self._create_profile,
            CommandKind.ADD_INSTANCE: self._add_instance,
            CommandKind.REMOVE_INSTANCE: self._remove_instance,
            CommandKind.COLLECT_ALLOCATIONS: self._collect_allocations,
        }

    def decode(self, messages: Sequence[Message]) -> DecodedBatch:
        """Parse and route a batch; pure CPU, so the consumer runs it for the next batch while this one is applied."""
        started = time.perf_counter()
        batch = DecodedBatch(len(messages))
        for message in messages:
            try:
                item = self._decode(message)
            except Rejected as exc:  # not a valid ingest event or command: it goes to the dead-letter topic
                batch.undecodable.append((message, exc))
                continue
            flow_id = str(_flow_id(item))
            owner = owning_partition(flow_id.encode(), self.partitions[message.topic])
            if owner != message.partition:
                batch.misrouted.append((message, owner))
                continue
            batch.runs.setdefault(flow_id, []).append(item)
        metrics.PHASE_SECONDS.labels("decode").observe(time.perf_counter() - started)
        return batch

    async def apply(self, batch: DecodedBatch) -> None:
        """Apply a decoded batch: media, metadata, announcements, replies and dead letters, all durable on return."""
        started = time.perf_counter()
        self._deliveries = []  # a failed earlier attempt at this batch leaves nothing to wait for
        for message, exc in batch.undecodable:
            await self._dead_letter(message, exc.reason, exc.detail)
        for message, owner in batch.misrouted:
            # A producer with another partitioner: hand the message to the agent that owns the flow.
            self._deliveries.append(await self.publisher.send(message.topic, message.key, message.value,
                                                              partition=owner))
            metrics.EVENTS.labels(message.topic, "rerouted").inc()
        phase = _Phases(started)
        runs = batch.runs
        segment_only = {f: items for f, items in runs.items() if all(isinstance(i, SegmentEvent) for i in items)}
        if segment_only:
            works = await self._prepare(segment_only)  # type: ignore[arg-type]
            phase.done("prepare")
            await self._apply_segment_work(works, phase)
        for flow_id, items in runs.items():
            if flow_id not in segment_only:
                await self._apply_flow(flow_id, items)
        phase.done("announce_and_commands")
        deliveries, self._deliveries = self._deliveries, []
        if deliveries:
            await asyncio.gather(*deliveries)
        phase.done("deliver")
        metrics.BATCH_SIZE.observe(batch.size)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    # -- decoding and routing -------------------------------------------------------------------

    def _decode(self, message: Message) -> Item:
        try:
            if message.topic == COMMANDS.name:
                return CommandItem(message, Command.model_validate_json(message.value))
            event, media = decode_ingest_event(message.value, max_media_bytes=self.max_media_bytes)
            return SegmentEvent(message, event, media)
        except FramingError as exc:
            raise Rejected(RejectReason.BAD_FRAMING, str(exc)) from None
        except MediaTooLarge as exc:
            raise Rejected(RejectReason.MEDIA_TOO_LARGE, str(exc)) from None
        except InvalidEvent as exc:
            reason = RejectReason.INVALID_TIMERANGE if exc.fields & TIMERANGE_FIELDS else RejectReason.INVALID_EVENT
            raise Rejected(reason, str(exc)) from None
        except ValidationError as exc:
            raise Rejected(RejectReason.INVALID_COMMAND, str(exc)) from None

    async def _apply_flow(self, flow_id: str, items: list[Item]) -> None:
        """Apply one flow's items strictly in order; consecutive segment events form one run."""
        run: list[SegmentEvent] = []
        for item in items:
            if isinstance(item, SegmentEvent):
                run.append(item)
                continue
            if run:
                await self._apply_segment_work(await self._prepare({flow_id: run}))
                run = []
            await self._apply_command(item)
        if run:
            await self._apply_segment_work(await self._prepare({flow_id: run}))

    # -- segment events -------------------------------------------------------------------------

    async def _prepare(self, runs: dict[str, list[SegmentEvent]]) -> list[FlowWork]:
        """Read what the rules need for these flows in one store call, then plan each flow's run."""
        contexts = await self.store.segment_context([
            ContextRequest(flow_id, {e.event.event_id for e in events},
                           {_object_id(e.event) for e in events} | {e.event.init_object_id for e in events
                                                                     if e.event.init_object_id},
                           segment_window(e.event.timerange for e in events))
            for flow_id, events in runs.items()])
        now = time.time_ns()
        return [self._plan(flow_id, events, contexts[flow_id], now) for flow_id, events in runs.items()]

    def _plan(self, flow_id: str, events: list[SegmentEvent], context: SegmentContext, now: int) -> FlowWork:
        if context.flow is None:
            return FlowWork(flow_id, events, [], None, now)
        applied = set(context.applied_event_ids)
        fresh: list[SegmentEvent] = []
        repeats: list[SegmentEvent] = []
        for e in events:
            if e.event.event_id in applied:
                repeats.append(e)
            else:
                applied.add(e.event.event_id)
                fresh.append(e)
        requests = [_request_from_event(i, e.event) for i, e in enumerate(fresh)]
        plan = plan_segments(context.flow, requests, context.objects, context.nearby, storage_id=self.storage_id,
                             now_ns=now, init_objects=context.init_objects)
        return FlowWork(flow_id, fresh, repeats, plan, now)

    async def _apply_segment_work(self, works: list[FlowWork], phase: _Phases | None = None) -> None:
        """Store all inline media, then commit every flow's changes in one transaction, then announce."""
        phase = phase or _Phases(time.perf_counter())
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            media = [item for w in works for item in w.inline_media()]
            stored = await self.objects.put_inline(media) if media else {}
            stored |= await self.objects.uploaded_facts([o for w in works if w.plan for o in w.plan.objects
                                                         if o.object_id not in stored])
            works = [w.with_object_facts(stored) for w in works]
            phase.done("media")
            try:
                await self.store.commit_segments([w.commit() for w in works if w.plan is not None])
                break
            except Conflict as exc:
                if attempt == COMMIT_ATTEMPTS:
                    raise
                # Another flow's agent dropped an object these segments use since they were planned: plan again.
                log.info("commit refused (%s); planning the batch again", exc)
                replanned = await self._prepare({w.flow_id: w.fresh for w in works})
                works = [replace(new, repeats=old.repeats + new.repeats) for old, new in zip(works, replanned)]
        phase.done("commit")
        for w in works:
            if w.plan is None:
                for e in w.fresh:
                    await self._reject_event(e, Rejected(RejectReason.UNKNOWN_FLOW,
                                                         f"flow {w.flow_id} does not exist"))
                continue
            for request, rejection in w.plan.rejected:
                await self._reject_event(w.fresh[request.ref], rejection)
            announced = [seg.doc for _, seg in w.plan.accepted]
            announced += [segment_doc(_request_from_event(0, e.event)) for e in w.repeats]
            if announced:
                await self._announce_segments(w.flow_id, announced)
            metrics.EVENTS.labels(INGEST_SEGMENTS.name, "applied").inc(len(w.plan.accepted))
            if w.repeats:
                metrics.EVENTS.labels(INGEST_SEGMENTS.name, "duplicate").inc(len(w.repeats))

    async def _reject_event(self, item: SegmentEvent, rejection: Rejected) -> None:
        await self._dead_letter(item.message, rejection.reason, rejection.detail, event_id=item.event.event_id,
                                flow_id=str(item.event.flow_id))

    async def _announce_segments(self, flow_id: str, docs: list[bytes]) -> None:
        body = b'{"flow_id":"' + flow_id.encode() + b'","segments":[' + b",".join(docs) + b"]}"
        self._deliveries.append(await self.publisher.event("flows/segments_added", flow_id, body))

    async def _dead_letter(self, message: Message, reason: RejectReason, detail: str, *, event_id: str | None = None,
                           flow_id: str | None = None) -> None:
        letter = DeadLetter(reason=reason, detail=detail, source_topic=message.topic,
                            source_partition=message.partition, source_offset=message.offset, event_id=event_id,
                            flow_id=flow_id, rejected_at=rfc3339_now())
        self._deliveries.append(await self.publisher.dead_letter(letter, message.key, message.value))
        metrics.DEAD_LETTERS.labels(reason.value).inc()
        metrics.EVENTS.labels(message.topic, "rejected").inc()
        log.info("dead-lettered %s[%d]@%d: %s: %s", message.topic, message.partition, message.offset, reason, detail)

    # -- commands -------------------------------------------------------------------------------

    async def _apply_command(self, item: CommandItem) -> None:
        command = item.command
        try:
            if await self.store.applied_event_ids(str(command.target_id), [command.command_id]):
                result: dict[str, Any] = {"duplicate": True}
            else:
                result = await self._handlers[command.kind](command)
            reply = CommandReply(command_id=command.command_id, ok=True, result=result)
        except Rejected as rejection:
            reply = CommandReply(command_id=command.command_id, ok=False, reason=rejection.reason,
                                 detail=rejection.detail)
        except Exception as exc:  # a bug or an outage: the command goes to the DLQ, the agent goes on
            log.exception("command %s (%s) failed", command.command_id, command.kind)
            detail = f"the command failed unexpectedly: {type(exc).__name__}: {exc}"
            reply = CommandReply(command_id=command.command_id, ok=False, reason=RejectReason.INTERNAL_ERROR,
                                 detail=detail)
            await self._dead_letter(item.message, RejectReason.INTERNAL_ERROR, detail, flow_id=str(command.target_id))
        metrics.EVENTS.labels(COMMANDS.name, "applied" if reply.ok else "rejected").inc()
        if command.reply_to is not None:  # continuations the agent sends itself want no reply
            self._deliveries.append(await self.publisher.reply(reply, command.reply_to))

    async def _put_flow(self, command: Command) -> dict[str, Any]:
        try:
            flow = FlowAdapter.validate_python(command.body)
        except ValidationError as exc:
            raise Rejected(RejectReason.INVALID_COMMAND, str(exc)) from None
        doc = FlowAdapter.dump_python(flow, mode="json", exclude_none=True)
        try:
            current = await self.store.get_flow(str(command.target_id))
        except NotFound:
            current = None
        doc = with_metadata_version(attributed(doc, command.principal, None if current is None else current.doc),
                                    command.body.get("metadata_version"))
        if current is not None and current.read_only and doc.get("read_only", True):
            raise Rejected(RejectReason.FLOW_READ_ONLY, f"flow {command.target_id} is read-only")
        try:
            created = await self.store.put_flow(doc, time.time_ns())
        except Conflict as exc:
            raise Rejected(RejectReason.CONFLICT, str(exc)) from None
        stored = await self.store.get_flow(str(command.target_id))
        self._deliveries.append(await self.publisher.event(
            "flows/created" if created else "flows/updated", str(command.target_id), {"flow": stored.doc}))
        return {"created": created}

    async def _update_flow(self, command: Command) -> dict[str, Any]:
        patches = _patches(command)
        try:
            current = await self.store.get_flow(str(command.target_id))
        except NotFound:
            raise Rejected(RejectReason.UNKNOWN_FLOW, f"flow {command.target_id} does not exist") from None
        if current.read_only and not only_read_only_changes(patches):
            raise Rejected(RejectReason.FLOW_READ_ONLY, f"flow {command.target_id} is read-only")
        try:
            flow = FlowAdapter.validate_python(patch_document(current.doc, patches))
        except ValidationError as exc:
            raise Rejected(RejectReason.INVALID_COMMAND, summarise_errors(exc)) from None
        doc = FlowAdapter.dump_python(flow, mode="json", exclude_none=True)
        doc = with_metadata_version(attributed(doc, command.principal, current.doc))
        try:
            await self.store.put_flow(doc, time.time_ns())
        except Conflict as exc:
            raise Rejected(RejectReason.CONFLICT, str(exc)) from None
        self._deliveries.append(await self.publisher.event("flows/updated", str(command.target_id), {"flow": doc}))
        return {}

    async def _update_source(self, command: Command) -> dict[str, Any]:
        source_id = str(command.target_id)
        try:
            current = await self.store.get_source(source_id)
        except NotFound:
            raise Rejected(RejectReason.UNKNOWN_SOURCE, f"source {source_id} does not exist") from None
        try:
            source = Source.model_validate(patch_document(current.doc, _patches(command)))
        except ValidationError as exc:
            raise Rejected(RejectReason.INVALID_COMMAND, summarise_errors(exc)) from None
        doc = attributed(source.model_dump(mode="json", exclude_none=True), command.principal, current.doc)
        await self.store.put_source(doc, time.time_ns())
        self._deliveries.append(await self.publisher.event("sources/updated", source_id, {"source": doc}))
        return {}

    async def _update_service(self, command: Command) -> dict[str, Any]:
        try:
            update = ServicePost.model_validate(command.body)
        except ValidationError as exc:
            raise Rejected(RejectReason.INVALID_COMMAND, summarise_errors(exc)) from None
        info = await self.store.get_service_info()
        info.update(update.model_dump(exclude_none=True, include={"name", "description"}))
        await self.store.put_service_info(info)
        return info

    async def _create_profile(self, command: Command) -> dict[str, Any]:
        try:
            profile = Profile.model_validate(command.body)
        except ValidationError as exc:
            raise Rejected(RejectReason.INVALID_COMMAND, summarise_errors(exc)) from None
        doc = profile.model_dump(mode="json", exclude_none=True, exclude={"created"})
        if command.principal is not None:
            doc["created_by"] = command.principal
        try:
            await self.store.create_profile(doc, time.time_ns())
        except Conflict as exc:
            raise Rejected(RejectReason.CONFLICT, str(exc)) from None
        return {}

    async def _add_instance(self, command: Command) -> dict[str, Any]:
        body = command.body
        if "storage_id" in body:
            return await self._copy_instance(body["object_id"], body["storage_id"])
        try:
            await self.store.add_uncontrolled_instances(body["object_id"], [(body["label"], body["url"])])
        except Conflict as exc:
            raise Rejected(RejectReason.CONFLICT, str(exc)) from None
        return {}

    async def _copy_instance(self, object_id: str, storage_id: str) -> dict[str, Any]:
        """A controlled copy on another backend, recorded (and so listed) only once its bytes are complete."""
        record = (await self.store.get_objects([object_id])).get(object_id)
        if record is None or not record.registered:
            raise Rejected(RejectReason.MISSING_OBJECT, f"object {object_id} is not registered")
        if storage_id in record.storage_ids:
            return {}
        try:
            await self.objects.copy(record, storage_id)
        except MediaNotFound:
            raise Rejected(RejectReason.MISSING_OBJECT, f"object {object_id} has no bytes to copy") from None
        except NotFound as exc:
            raise Rejected(RejectReason.INVALID_COMMAND, str(exc)) from None
        await self.store.add_controlled_copy(object_id, storage_id)
        return {}

    async def _remove_instance(self, command: Command) -> dict[str, Any]:
        if "storage_id" in command.body:
            object_id, storage_id = command.body["object_id"], command.body["storage_id"]
            try:
                await self.store.remove_controlled_copy(object_id, storage_id)
            except NotFound as exc:
                raise Rejected(RejectReason.FIELD_NOT_SET, str(exc)) from None
            except Conflict as exc:
                raise Rejected(RejectReason.CONFLICT, str(exc)) from None
            await self.objects.delete_copy(object_id, storage_id)
            return {}
        try:
            await self.store.remove_uncontrolled_instance(command.body["object_id"], command.body["label"])
        except NotFound as exc:
            raise Rejected(RejectReason.FIELD_NOT_SET, str(exc)) from None
        return {}

    async def _delete_segments(self, command: Command) -> dict[str, Any]:
        if "request" not in command.body:  # a continuation was checked when the request began
            await self._writable_flow(command, need_container=False)
        return await self._delete_in_chunks(command, delete_flow=False)

    async def _delete_flow(self, command: Command) -> dict[str, Any]:
        if "request" not in command.body:
            await self._writable_flow(command, need_container=False)
        return await self._delete_in_chunks(command, delete_flow=True)

    async def _delete_in_chunks(self, command: Command, *, delete_flow: bool) -> dict[str, Any]:
        """Delete at most `delete_chunk` segments; if more remain, record a deletion request and send
        this agent a continuation on the flow's own partition, so chunks stay ordered with other writes."""
        flow_id, body, now = str(command.target_id), command.body, time.time_ns()
        start, end = body.get("start_ns", INT64_MIN), body.get("end_ns", INT64_MAX)
        deletion = await self.store.delete_segments(flow_id, start, end, body.get("object_id"), now,
                                                    limit=self.delete_chunk)
        await self.objects.forget(deletion.unreferenced_objects, cause="unreferenced")
        if deletion.span is not None:
            self._deliveries.append(await self.publisher.event("flows/segments_deleted", flow_id, {
                "flow_id": flow_id, "timerange": str(TimeRange.from_half_open(*deletion.span))}))
        request = body.get("request")
        if deletion.more:
            assert deletion.span is not None
            request = deletion_request(command, delete_flow, now, request,
                                       remaining=TimeRange.from_half_open(deletion.span[1], end))
            await self.store.put_deletion_request(request, now)
            follow_up = Command(command_id=str(uuid.uuid4()), kind=command.kind, target_id=command.target_id,
                                issued_at=rfc3339_now(), body={**body, "request": request})
            self._deliveries.append(await self.publisher.command(follow_up))
            return {"deletion_request": request}
        if delete_flow:
            await self._remove_flow(flow_id)
        if request is not None:
            request = {**request, "status": "done", "timerange_remaining": "()", "updated": rfc3339_now()}
            await self.store.put_deletion_request(request, now)
        return {"deleted": deletion.segments}

    async def _remove_flow(self, flow_id: str) -> None:
        try:
            deletion = await self.store.delete_flow(flow_id)
        except NotFound:
            return  # a redelivered final chunk: the flow is gone already
        await self.objects.forget(deletion.unreferenced_objects, cause="unreferenced")
        self._deliveries.append(await self.publisher.event("flows/deleted", flow_id, {"flow_id": flow_id}))
        if deletion.source_deleted:
            self._deliveries.append(await self.publisher.event(
                "sources/deleted", deletion.source_deleted, {"source_id": deletion.source_deleted}))

    async def _collect_allocations(self, command: Command) -> dict[str, Any]:
        """Drop allocations that were never registered, with any bytes uploaded to them. Sent by the
        collector for the allocating flow, so it runs in order with that flow's registrations."""
        dropped = await self.store.drop_allocations(command.body["object_ids"])
        await self.objects.forget(dropped, cause="allocation_expired")
        if dropped:
            log.info("collected %d expired allocations of flow %s", len(dropped), command.target_id)
        return {"collected": [o.object_id for o in dropped]}

    async def _writable_flow(self, command: Command, *, need_container: bool = True) -> FlowRecord:
        try:
            flow = await self.store.get_flow(str(command.target_id))
        except NotFound:
            raise Rejected(RejectReason.UNKNOWN_FLOW, f"flow {command.target_id} does not exist") from None
        if need_container:
            check_flow_writable(flow)
        elif flow.read_only:
            raise Rejected(RejectReason.FLOW_READ_ONLY, f"flow {flow.id} is read-only")
        return flow

    async def _allocate(self, command: Command) -> dict[str, Any]:
        flow = await self._writable_flow(command)
        ids: list[str] = command.body["object_ids"]
        now = time.time_ns()
        allocations = [ObjectAllocation(i, command.body.get("storage_id") or self.storage_id, flow.id,
                                        command.body.get("content_type"), now) for i in ids]
        try:
            await self.store.allocate_objects(allocations)
        except Conflict as exc:
            known = await self.store.get_objects(ids)
            redelivered = len(known) == len(ids) and all(
                not o.registered and o.allocated_by_flow == flow.id for o in known.values())
            if not redelivered:
                raise Rejected(RejectReason.CONFLICT, str(exc)) from None
        return {"object_ids": ids}

    async def _add_segments(self, command: Command) -> dict[str, Any]:
        try:
            posts = [FlowSegmentPost.model_validate(s) for s in command.body["segments"]]
        except ValidationError as exc:
            raise Rejected(RejectReason.INVALID_COMMAND, str(exc)) from None
        requests = [_request_from_post(i, p) for i, p in enumerate(posts)]
        flow_id = str(command.target_id)
        named = {r.object_id for r in requests} | {r.init_object_id for r in requests if r.init_object_id}
        window = segment_window(r.timerange for r in requests)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            context = (await self.store.segment_context([ContextRequest(flow_id, (), named, window)]))[flow_id]
            if context.flow is None:
                raise Rejected(RejectReason.UNKNOWN_FLOW, f"flow {flow_id} does not exist")
            flow = context.flow
            check_flow_writable(flow)  # a whole-request refusal (403/400), not one failure per segment
            now = time.time_ns()
            plan = plan_segments(flow, requests, context.objects, context.nearby, storage_id=self.storage_id,
                                 now_ns=now, init_objects=context.init_objects)
            objects = with_facts(plan.objects, await self.objects.uploaded_facts(plan.objects))
            try:
                await self.store.commit_segments([SegmentCommit(
                    flow_id=flow.id, segments=[s for _, s in plan.accepted], objects=objects,
                    event_ids=[command.command_id], now_ns=now)])
                break
            except Conflict:
                if attempt == COMMIT_ATTEMPTS:
                    raise
                # Another flow's agent dropped an object these segments use since they were planned: plan again.
        for request, _ in plan.accepted:  # uncontrolled URLs given with the segment (checked by the API)
            if posts[request.ref].get_urls:
                try:
                    await self.store.add_uncontrolled_instances(
                        request.object_id, [(u.label, u.url) for u in posts[request.ref].get_urls or ()])
                except Conflict as exc:
                    log.warning("segment kept, uncontrolled URLs not registered: %s", exc)
        if plan.accepted:
            await self._announce_segments(flow.id, [s.doc for _, s in plan.accepted])
        failed = [{"object_id": r.object_id, "timerange": str(r.timerange),
                   "error": {"type": rejection.reason.value, "summary": rejection.detail, "time": rfc3339_now()}}
                  for r, rejection in plan.rejected]
        return {"failed_segments": failed}


class _Phases:
    """Times consecutive phases of a batch into `tams_agent_phase_seconds`."""

    __slots__ = ("_last",)

    def __init__(self, started: float) -> None:
        self._last = started

    def done(self, phase: str) -> None:
        now = time.perf_counter()
        metrics.PHASE_SECONDS.labels(phase).observe(now - self._last)
        self._last = now


DELETION_REQUEST_LIFETIME_NS = 24 * 3600 * NS_PER_SEC


def with_facts(objects: list[ObjectRegistration], facts: dict[str, MediaInfo]) -> list[ObjectRegistration]:
    """Registrations with the size and checksum of their stored bytes, where the media store knows them."""
    return [replace(o, size=facts[o.object_id].size, checksum=facts[o.object_id].checksum)
            if o.object_id in facts else o for o in objects]


def deletion_request(command: Command, delete_flow: bool, now_ns: int, current: dict[str, Any] | None,
                     remaining: TimeRange) -> dict[str, Any]:
    """The TAMS deletion-request record; its id is derived from the first command, so a redelivery reuses it."""
    if current is None:
        body = command.body
        start, end = body.get("start_ns", INT64_MIN), body.get("end_ns", INT64_MAX)
        current = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tams-deletion:{command.command_id}")),
            "flow_id": str(command.target_id), "delete_flow": delete_flow,
            "timerange_to_delete": str(TimeRange.from_half_open(start, end)),
            "created": rfc3339_from_ns(now_ns), "expiry": rfc3339_from_ns(now_ns + DELETION_REQUEST_LIFETIME_NS),
        }
    return {**current, "status": "started", "timerange_remaining": str(remaining), "updated": rfc3339_from_ns(now_ns)}


def _patches(command: Command) -> list[FieldPatch]:
    try:
        return [FieldPatch.model_validate(p) for p in command.body["patches"]]
    except (ValidationError, KeyError, TypeError) as exc:
        raise Rejected(RejectReason.INVALID_COMMAND, f"invalid patches: {exc}") from None


def _flow_id(item: Item) -> object:
    return item.event.flow_id if isinstance(item, SegmentEvent) else item.command.target_id


def _object_id(event: IngestSegmentEvent) -> str:
    return inline_object_id(event) if event.inline else event.object_id  # type: ignore[return-value]


def _request_from_event(ref: int, event: IngestSegmentEvent) -> SegmentRequest:
    return SegmentRequest(
        ref=ref, object_id=_object_id(event),
        timerange=event.timerange, ts_offset=event.ts_offset, last_duration=event.last_duration,
        key_frame_count=event.key_frame_count, init_object_id=event.init_object_id,
        object_timerange=event.object_timerange, media_size=event.media_size,
    )


def _request_from_post(ref: int, post: FlowSegmentPost) -> SegmentRequest:
    return SegmentRequest(
        ref=ref, object_id=post.object_id, timerange=post.timerange, ts_offset=post.ts_offset,
        last_duration=post.last_duration, key_frame_count=post.key_frame_count, init_object_id=post.init_object_id,
        object_timerange=post.object_timerange, sample_offset=post.sample_offset, sample_count=post.sample_count,
    )


