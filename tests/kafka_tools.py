"""Small helpers for tests that talk to the broker directly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_topic(bootstrap: str, topic: str, done: Callable[[list[bytes]], bool], timeout: float = 60.0
                     ) -> list[tuple[bytes | None, bytes]]:
    """Read a topic from the beginning (no group) until `done(values)` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_wait_ms=20)
    await consumer.start()
    try:
        partitions = None
        while not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic)
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        records: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + timeout
        while not done([v for _, v in records]):
            assert time.monotonic() < deadline, f"gave up reading {topic}: {len(records)} records"
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend((r.key, r.value) for r in batch)
        return records
    finally:
        await consumer.stop()


async def all_segments(http: httpx.AsyncClient, flow_id: str) -> list[dict]:
    """Every segment of a flow, following the Link headers."""
    segments: list[dict] = []
    url: str | None = f"/flows/{flow_id}/segments?limit=1000&accept_get_urls="
    while url:
        response = await http.get(url)
        assert response.status_code == 200, response.text
        segments.extend(response.json())
        url = response.links.get("next", {}).get("url")
    return segments


async def wait_for_segments(http: httpx.AsyncClient, flow_ids: list[str], expected: int, timeout: float = 180.0
                            ) -> dict[str, list[dict]]:
    deadline = time.monotonic() + timeout
    while True:
        found = {f: await all_segments(http, f) for f in flow_ids}
        total = sum(len(v) for v in found.values())
        if total >= expected or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def segments_at_least(http: httpx.AsyncClient, flow_id: str, count: int, timeout: float = 120.0
                            ) -> list[dict]:
    """Wait until the flow has at least `count` segments; returns them (fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    while len(found := await all_segments(http, flow_id)) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} segments after {timeout} s"
        await asyncio.sleep(0.2)
    return found
