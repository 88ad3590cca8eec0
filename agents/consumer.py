"""The agent's Kafka side: batches of ingest events and commands straight from an aiokafka group consumer.

Why not a Faust stream: faust-streaming hands each message to an agent through tasks of its own (one
`wait_first` per message, an Event, a queue hop, sensor calls). Measured here, a Faust agent that does
nothing consumes about 0.2 of the broker's raw produce rate, so no Faust agent could meet the pipeline's
target. `getmany` hands over whole fetches, and the agent applies in batches anyway; aiokafka's fetcher
keeps fetching in the background while a batch is applied.

Offsets are committed after each batch is applied (media, metadata, events, replies and dead letters
durable). On a rebalance the listener waits until the batch in hand is applied and committed before the
partitions go, so one writer per flow holds; a batch decoded ahead before the revocation is dropped
unapplied (the partitions' next owner, maybe this member again, reads it from the committed offset).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, KafkaError

from agents import metrics
from agents.ingest import Message

log = logging.getLogger(__name__)

Batch = TypeVar("Batch")
FETCH_MAX_BYTES = 16 * 1024 * 1024  # a whole inline-media event (1 MiB by default) with room to spare


class BatchConsumer(Generic[Batch]):
    """Consumes `topics` as a member of `group`: `decode` turns each fetch into a batch, `apply` applies it.

    `decode` is plain CPU work, so it runs for the next fetch while the previous batch is being applied
    (whose time goes mostly to waiting on the database and the broker); `combine` joins a later batch
    onto an earlier one."""

    def __init__(self, bootstrap: str, group: str, topics: Iterable[str], decode: Callable[[list[Message]], Batch],
                 combine: Callable[[Batch, Batch], Batch], apply: Callable[[Batch], Awaitable[None]], *,
                 max_batch: int, fetch_wait_ms: int, session_timeout_s: float, retry_first_s: float = 0.5,
                 retry_max_s: float = 30.0) -> None:
        self._topics = tuple(topics)
        self._decode = decode
        self._combine = combine
        self._apply = apply
        self._ahead: _Decoded[Batch] | None = None  # decoded, waiting to be applied
        self._fetch_ended = False
        self._ahead_changed = asyncio.Condition()
        self._max_batch = max_batch
        self._retry_first_s = retry_first_s
        self._retry_max_s = retry_max_s
        self._applying = asyncio.Lock()
        self._generation = 0  # bumped on every revocation: batches decoded before it are stale
        self._stopping = False
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap.split(","), group_id=group, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=fetch_wait_ms, fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=FETCH_MAX_BYTES, session_timeout_ms=int(session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, session_timeout_s / 5) * 1000))

    async def start(self) -> None:
        self._consumer.subscribe(self._topics, listener=_WaitForBatch(self))
        await self._consumer.start()

    async def stop(self, grace_s: float = 30.0) -> None:
        """Leave the group once the batch in hand (if any) is applied and committed.

        A batch still failing after `grace_s` (the database is down, say) is left uncommitted: whoever
        owns its partitions next applies it."""
        self._stopping = True
        try:
            await asyncio.wait_for(self._applying.acquire(), grace_s)
        except TimeoutError:
            log.warning("stopping without the batch in hand (still failing after %.0f s); it will be redelivered",
                        grace_s)
            await self._consumer.stop()
            return
        try:
            await self._consumer.stop()
        finally:
            self._applying.release()

    def owned(self, topic: str) -> set[int]:
        """Partitions of `topic` this member holds now."""
        return {tp.partition for tp in self._consumer.assignment() if tp.topic == topic}

    async def run(self) -> None:
        """Apply and commit decoded batches, in order, until `stop`."""
        self._ahead, self._fetch_ended = None, False
        fetching = asyncio.create_task(self._fetch_and_decode(), name="fetch-and-decode")
        try:
            while True:
                async with self._ahead_changed:
                    await self._ahead_changed.wait_for(lambda: self._ahead is not None or self._fetch_ended)
                    decoded, self._ahead = self._ahead, None
                    self._ahead_changed.notify_all()
                if decoded is None:
                    return
                async with self._applying:
                    if self._stopping:
                        return
                    if decoded.generation != self._generation:
                        continue  # decoded before a revocation: whoever owns the partitions now reads it again
                    if not await self._apply_until_done(decoded.batch):
                        return  # stopping while the batch kept failing: it stays uncommitted
                    await self._commit(decoded.offsets)
        finally:
            fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetching

    async def _fetch_and_decode(self) -> None:
        """Fetch and decode while the previous batch is applied; fetches arriving meanwhile join the batch
        waiting to be applied (up to `max_batch` records), so decoding ahead adds no latency."""
        try:
            while not self._stopping:
                records = await self._consumer.getmany(timeout_ms=1000, max_records=self._max_batch)
                if not records:
                    continue
                # getmany returns nothing during a reassignment and only records of assigned partitions,
                # so these belong to the assignment of this generation.
                fetched = _Decoded(self._generation, {tp: batch[-1].offset + 1 for tp, batch in records.items()},
                                   sum(len(batch) for batch in records.values()),
                                   self._decode(in_arrival_order(records.values())))
                async with self._ahead_changed:
                    await self._ahead_changed.wait_for(lambda: self._can_join(fetched))
                    waiting = self._ahead
                    if waiting is None or waiting.generation != fetched.generation:
                        self._ahead = fetched  # a stale waiting batch would be dropped anyway
                    else:
                        self._ahead = _Decoded(fetched.generation, waiting.offsets | fetched.offsets,
                                               waiting.count + fetched.count,
                                               self._combine(waiting.batch, fetched.batch))
                    self._ahead_changed.notify_all()
        except ConsumerStoppedError:
            pass
        finally:
            async with self._ahead_changed:
                self._fetch_ended = True  # ends `run`, which then raises whatever ended this task
                self._ahead_changed.notify_all()

    def _can_join(self, fetched: _Decoded[Batch]) -> bool:
        waiting = self._ahead
        return waiting is None or waiting.generation != fetched.generation or waiting.count < self._max_batch

    async def _apply_until_done(self, batch: Batch) -> bool:
        """Apply a batch, retrying with backoff if it fails (a database outage, a broker hiccup, a bug);
        False if the consumer is stopping meanwhile.

        Nothing is committed meanwhile, so the worker holds its place instead of skipping events; events and
        segment commands carry ids, so whatever a failed attempt already applied is not applied twice."""
        delay = self._retry_first_s
        while True:
            try:
                await self._apply(batch)
                return True
            except Exception:
                if self._stopping:
                    log.exception("applying a batch failed while stopping; leaving it uncommitted")
                    return False
                log.exception("applying a batch failed; retrying in %.1f s", delay)
                metrics.BATCH_RETRIES.inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on (this member was too slow or lost its session): the partitions' next
            # owner applies the batch again, which changes nothing.
            log.warning("committing offsets failed (%s); the batch will be redelivered", exc)


@dataclass(frozen=True, slots=True)
class _Decoded(Generic[Batch]):
    generation: int
    offsets: dict[TopicPartition, int]  # the next offset to read, per partition
    count: int  # records
    batch: Batch


def in_arrival_order(batches: Collection[list[ConsumerRecord[Any, Any]]]) -> list[Message]:
    """Merge per-partition batches by producer timestamp, keeping each partition's own order.

    A flow's commands and segment events travel on two topics; merging by time applies, say, the
    `PUT /flows` that created a flow before the segments its encoder sent next. Records of one topic
    need no merge: each flow is on one partition."""
    if len({batch[0].topic for batch in batches}) == 1:
        return [record for batch in batches for record in batch]
    return list(heapq.merge(*batches, key=_timestamp))


def _timestamp(record: ConsumerRecord[Any, Any]) -> int:
    return record.timestamp


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BatchConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self._owner._applying.locked():
            log.info("rebalance: applying the batch in hand before giving up partitions")
        async with self._owner._applying:  # the batch in hand is applied and committed by now
            self._owner._generation += 1
        if revoked:
            log.info("partitions revoked: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
