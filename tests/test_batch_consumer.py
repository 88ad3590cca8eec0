"""The agent's batch consumer against the real broker: commit after apply, retries, stop and rebalance."""

from __future__ import annotations

import asyncio
import logging
import operator
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.consumer import BatchConsumer, in_arrival_order
from agents.ingest import Message
from tests.stack import Stack


async def new_topic(bootstrap: str, partitions: int) -> str:
    name = f"test.batch.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def produce(bootstrap: str, topic: str, partitions: int, count: int) -> dict[int, int]:
    """`count` messages spread over the partitions; returns each partition's end offset."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        sent = [await producer.send(topic, f"m{i}".encode(), partition=i % partitions) for i in range(count)]
        metadata = await asyncio.gather(*sent)
    finally:
        await producer.stop()
    ends: dict[int, int] = {}
    for m in metadata:
        ends[m.partition] = max(ends.get(m.partition, 0), m.offset + 1)
    return ends


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        return {p: await reader.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await reader.stop()


def consumer(stack: Stack, group: str, topic: str, apply: object, **kwargs: object) -> BatchConsumer[list[Message]]:
    return BatchConsumer(stack.bootstrap, group, [topic], list, operator.add, apply,  # type: ignore[arg-type]
                         max_batch=kwargs.pop("max_batch", 500), fetch_wait_ms=20, session_timeout_s=10,  # type: ignore[arg-type]
                         **kwargs)  # type: ignore[arg-type]


async def until(condition: object, timeout: float = 60.0) -> None:
    """Wait for `condition()` (sync or async) to hold, checking every 20 ms."""
    async def check() -> None:
        while True:
            result = condition()  # type: ignore[operator]
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(check(), timeout)


async def test_a_failed_batch_is_applied_again_and_committed_only_after(stack: Stack) -> None:
    topic = await new_topic(stack.bootstrap, 2)
    ends = await produce(stack.bootstrap, topic, 2, 40)
    group = f"test-{uuid.uuid4().hex[:8]}"
    attempts: list[list[int]] = []
    commits_during_retry: list[dict[int, int | None]] = []
    applied: list[tuple[int, int]] = []

    async def apply(batch: Sequence[Message]) -> None:
        attempts.append([m.offset for m in batch])
        if len(attempts) == 1:
            raise ConnectionError("the database went away")
        if len(attempts) == 2:
            commits_during_retry.append(await committed(stack.bootstrap, group, topic, 2))
        applied.extend((m.partition, m.offset) for m in batch)

    batches = consumer(stack, group, topic, apply, retry_first_s=0.01)
    await batches.start()
    runner = asyncio.create_task(batches.run())
    try:
        await until(lambda: len(applied) >= 40)
        await until(lambda: _committed_all(stack, group, topic, ends))
    finally:
        await batches.stop()
        await runner
    assert attempts[0] == attempts[1]
    assert commits_during_retry == [{0: None, 1: None}]
    assert sorted(applied) == sorted({(p, o) for p in ends for o in range(ends[p])})


async def _committed_all(stack: Stack, group: str, topic: str, ends: dict[int, int]) -> bool:
    return await committed(stack.bootstrap, group, topic, len(ends)) == ends


async def test_stop_applies_and_commits_the_batch_in_hand_first(stack: Stack) -> None:
    topic = await new_topic(stack.bootstrap, 1)
    ends = await produce(stack.bootstrap, topic, 1, 10)
    group = f"test-{uuid.uuid4().hex[:8]}"
    entered, release = asyncio.Event(), asyncio.Event()

    async def apply(batch: Sequence[Message]) -> None:
        entered.set()
        await release.wait()

    batches = consumer(stack, group, topic, apply)
    await batches.start()
    runner = asyncio.create_task(batches.run())
    await asyncio.wait_for(entered.wait(), 60)
    stopping = asyncio.create_task(batches.stop())
    done, _ = await asyncio.wait([stopping], timeout=0.5)
    assert not done, "stop returned while a batch was being applied"
    release.set()
    await asyncio.wait_for(stopping, 30)
    await asyncio.wait_for(runner, 30)
    assert await committed(stack.bootstrap, group, topic, 1) == ends


async def test_a_rebalance_waits_for_the_batch_in_hand(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """A second member joins while the first applies a batch: no partition is ever applied by both at once,
    the newcomer gets nothing until the batch is done, and every message is applied."""
    caplog.set_level(logging.INFO, logger="agents.consumer")
    partitions = 4
    topic = await new_topic(stack.bootstrap, partitions)
    ends = await produce(stack.bootstrap, topic, partitions, 400)
    group = f"test-{uuid.uuid4().hex[:8]}"
    in_flight: dict[int, str] = {}
    overlaps: list[tuple[str, int]] = []
    applied: dict[str, set[tuple[int, int]]] = {"a": set(), "b": set()}
    entered, release = asyncio.Event(), asyncio.Event()

    def member(name: str):  # noqa: ANN202
        async def apply(batch: Sequence[Message]) -> None:
            mine = {m.partition for m in batch}
            overlaps.extend((name, p) for p in mine if in_flight.get(p, name) != name)
            in_flight.update(dict.fromkeys(mine, name))
            try:
                if name == "a" and not entered.is_set():
                    entered.set()
                    await release.wait()
                applied[name].update((m.partition, m.offset) for m in batch)
            finally:
                for p in mine:
                    in_flight.pop(p, None)
        return apply

    a = consumer(stack, group, topic, member("a"), max_batch=50)
    b = consumer(stack, group, topic, member("b"), max_batch=50)
    await a.start()
    runners = [asyncio.create_task(a.run())]
    try:
        await asyncio.wait_for(entered.wait(), 60)

        async def join_and_run() -> None:
            await b.start()  # returns once the group gave it partitions
            await b.run()

        runners.append(asyncio.create_task(join_and_run()))
        await until(lambda: "applying the batch in hand before giving up partitions" in caplog.text)
        assert not applied["b"] and not b.owned(topic), "the newcomer started before the batch in hand was done"
        release.set()
        await until(lambda: len(applied["a"] | applied["b"]) == 400)
        await until(lambda: b.owned(topic) and a.owned(topic))
    finally:
        release.set()
        await asyncio.gather(a.stop(), b.stop())
        await asyncio.gather(*runners)
    assert not overlaps
    assert applied["a"] | applied["b"] == {(p, o) for p in ends for o in range(ends[p])}


def test_batches_merge_by_producer_time_keeping_each_partitions_order() -> None:
    def record(topic: str, partition: int, offset: int, timestamp: int) -> ConsumerRecord[bytes, bytes]:
        return ConsumerRecord(topic, partition, offset, timestamp, 0, None, b"", None, 0, 0, ())

    commands = [record("tams.commands", 0, 7, 100), record("tams.commands", 0, 8, 300)]
    # A partition's order wins over its timestamps (a producer's clock may step back).
    segments = [record("tams.ingest.segments", 0, 3, 200), record("tams.ingest.segments", 0, 4, 50),
                record("tams.ingest.segments", 0, 5, 400)]
    merged = in_arrival_order([segments, commands])
    assert [(m.topic[5], m.offset) for m in merged] == [("c", 7), ("i", 3), ("i", 4), ("c", 8), ("i", 5)]


async def test_stopping_while_a_batch_keeps_failing_leaves_it_uncommitted(stack: Stack) -> None:
    topic = await new_topic(stack.bootstrap, 1)
    await produce(stack.bootstrap, topic, 1, 5)
    group = f"test-{uuid.uuid4().hex[:8]}"
    attempts = 0
    failing = asyncio.Event()

    async def apply(batch: Sequence[Message]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts >= 2:
            failing.set()
        raise OSError("the database is down")

    batches = consumer(stack, group, topic, apply, retry_first_s=0.01, retry_max_s=0.05)
    await batches.start()
    runner = asyncio.create_task(batches.run())
    await asyncio.wait_for(failing.wait(), 60)
    await asyncio.wait_for(batches.stop(grace_s=1.0), 30)
    await asyncio.wait_for(runner, 30)
    assert await committed(stack.bootstrap, group, topic, 1) == {0: None}
