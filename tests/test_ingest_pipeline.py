"""Encoder events through Kafka and the agent into the stores, against the real broker and worker."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson
import pytest

from schemas.deadletter import decode_dead_letter
from schemas.ingest import IngestSegmentEvent
from schemas.timing import NS_PER_SEC, TimeRange
from tests.conftest import video_flow
from tests.kafka_tools import all_segments, read_topic, wait_for_segments
from tests.stack import Stack
from topics.producer import Publisher

SEGMENT = NS_PER_SEC // 25


async def create_flows(http: httpx.AsyncClient, count: int) -> list[str]:
    flows = [video_flow() for _ in range(count)]
    for flow in flows:
        response = await http.put(f"/flows/{flow['id']}", json=flow)
        assert response.status_code == 201, response.text
    return [f["id"] for f in flows]


async def allocate(http: httpx.AsyncClient, flow_id: str, count: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < count:
        response = await http.post(f"/flows/{flow_id}/storage", json={"limit": min(1000, count - len(ids))})
        assert response.status_code == 201, response.text
        ids += [o["object_id"] for o in response.json()["media_objects"]]
    return ids


def segment_event(flow_id: str, index: int, object_id: str | None = None) -> tuple[IngestSegmentEvent, bytes | None]:
    """Even indices carry inline media, odd ones refer to an allocated object."""
    timerange = TimeRange.from_half_open(index * SEGMENT, (index + 1) * SEGMENT)
    if object_id is None:
        media = index.to_bytes(4, "big") * 64
        return IngestSegmentEvent(event_id=f"{flow_id}-{index}", flow_id=flow_id, timerange=timerange,
                                  media_size=len(media)), media
    return IngestSegmentEvent(event_id=f"{flow_id}-{index}", flow_id=flow_id, timerange=timerange,
                              object_id=object_id), None


async def build_run(http: httpx.AsyncClient, flows: list[str], per_flow: int
                    ) -> list[tuple[IngestSegmentEvent, bytes | None]]:
    events = []
    for flow_id in flows:
        objects = await allocate(http, flow_id, per_flow // 2)
        for i in range(per_flow):
            events.append(segment_event(flow_id, i, None if i % 2 == 0 else objects[i // 2]))
    return events


async def stored(http: httpx.AsyncClient, flows: list[str]) -> int:
    return sum([len(await all_segments(http, f)) for f in flows])


def assert_exactly_once(found: dict[str, list[dict]], per_flow: int) -> None:
    for flow_id, segments in found.items():
        ranges = [s["timerange"] for s in segments]
        expected = [str(TimeRange.from_half_open(i * SEGMENT, (i + 1) * SEGMENT)) for i in range(per_flow)]
        assert len(ranges) == len(set(ranges)), f"duplicates in flow {flow_id}"
        assert ranges == expected, f"flow {flow_id}: {len(ranges)} segments, expected {per_flow}"


@pytest.mark.slow
async def test_ten_thousand_events_inline_and_by_reference_give_ten_thousand_segments(
        stack: Stack, http: httpx.AsyncClient) -> None:
    flows = await create_flows(http, 4)
    events = await build_run(http, flows, 2500)
    publisher = Publisher(stack.bootstrap)
    await publisher.start()
    try:
        deliveries = [await publisher.ingest(e, m) for e, m in events]
        deliveries += [await publisher.ingest(e, m) for e, m in events[::7]]  # the same events again
        await asyncio.gather(*deliveries)
    finally:
        await publisher.stop()
    found = await wait_for_segments(http, flows, 10_000)
    assert_exactly_once(found, 2500)
    inline = found[flows[0]][0]
    body = (await http.get(f"/flows/{flows[0]}/segments", params={"timerange": inline["timerange"]})).json()
    media = await http.get(body[0]["get_urls"][0]["url"])
    assert media.content == (0).to_bytes(4, "big") * 64


@pytest.mark.slow
async def test_worker_killed_midway_still_gives_each_segment_exactly_once(
        stack: Stack, http: httpx.AsyncClient) -> None:
    flows = await create_flows(http, 4)
    events = await build_run(http, flows, 2500)
    publisher = Publisher(stack.bootstrap)
    await publisher.start()

    async def publish_steadily() -> None:
        for start in range(0, len(events), 250):
            await asyncio.gather(*[await publisher.ingest(e, m) for e, m in events[start:start + 250]])
            await asyncio.sleep(0.05)

    publishing = asyncio.create_task(publish_steadily())
    try:
        while await stored(http, flows) < 2000:
            await asyncio.sleep(0.05)
        stack.kill_worker()
        stored_at_kill = await stored(http, flows)
        assert stored_at_kill < 10_000, "the run finished before the kill; the test proves nothing"
        stack.start_worker()
        await publishing
    finally:
        await publisher.stop()
    found = await wait_for_segments(http, flows, 10_000, timeout=240)
    assert_exactly_once(found, 2500)


@pytest.mark.slow
async def test_each_kind_of_bad_event_is_dead_lettered_with_its_reason_and_good_ones_are_stored(
        stack: Stack, http: httpx.AsyncClient) -> None:
    (flow_id,) = await create_flows(http, 1)
    (object_id,) = await allocate(http, flow_id, 1)
    tag = uuid.uuid4().hex
    key = flow_id.encode()

    def event(name: str, **fields: object) -> bytes:
        body = {"event_id": f"{tag}-{name}", "flow_id": flow_id, **fields}
        return orjson.dumps(body)

    good_first = event("good-1", timerange="[0:0_1:0)", object_id=object_id)
    good_last = event("good-2", timerange="[1:0_2:0)", media_size=3) + b"\nabc"
    bad = {
        "bad_framing": b"this is not json" + tag.encode(),
        "invalid_timerange": event("invalid-timerange", timerange="[5:0_nonsense", object_id=object_id),
        "unknown_flow": orjson.dumps({"event_id": f"{tag}-unknown", "flow_id": str(uuid.uuid4()),
                                      "timerange": "[0:0_1:0)", "object_id": "x"}),
        "overlap": event("overlap", timerange="[0:500000000_1:500000000)", media_size=1) + b"\nz",
        "missing_object": event("missing", timerange="[3:0_4:0)", object_id=f"never-allocated-{tag}"),
        "invalid_event": event("invalid", timerange="[4:0_5:0)"),
        "bad_framing_size": event("short", timerange="[6:0_7:0)", media_size=10) + b"\nonly5",
    }
    publisher = Publisher(stack.bootstrap)
    await publisher.start()
    try:
        await (await publisher.send("tams.ingest.segments", key, good_first))
        for value in bad.values():
            header = value.split(b"\n", 1)[0]
            owner = orjson.loads(header)["flow_id"].encode() if header.startswith(b"{") else key
            await (await publisher.send("tams.ingest.segments", owner, value))
        await (await publisher.send("tams.ingest.segments", key, good_last))
    finally:
        await publisher.stop()

    def ours(values: list[bytes]) -> list[tuple[object, bytes]]:
        letters = [decode_dead_letter(v) for v in values]
        return [(d, o) for d, o in letters if tag.encode() in o]

    records = await read_topic(stack.bootstrap, "tams.ingest.dlq", lambda vs: len(ours(vs)) >= len(bad))
    letters = ours([v for _, v in records])
    by_original = {original: letter for letter, original in letters}
    for expected_reason, value in bad.items():
        letter = by_original[value]
        assert letter.reason.value == expected_reason.removesuffix("_size"), (expected_reason, letter)
        assert letter.detail
    found = await wait_for_segments(http, [flow_id], 2)
    assert [s["timerange"] for s in found[flow_id]] == ["[0:0_1:0)", "[1:0_2:0)"]
