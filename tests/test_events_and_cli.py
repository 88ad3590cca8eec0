"""What consumers and newcomers touch: the event topic, the worker's metrics, schema export, `tams demo`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import jsonschema
import orjson

from schemas.export import write_schemas
from schemas.ingest import IngestSegmentEvent, encode_ingest_event
from schemas.timing import TimeRange
from tests.conftest import video_flow
from tests.kafka_tools import read_topic, wait_for_segments
from tests.stack import Stack
from topics.producer import Publisher


async def test_segments_added_is_announced_with_the_tams_envelope(stack: Stack, http: httpx.AsyncClient) -> None:
    flow = video_flow()
    flow_id = flow["id"]
    await http.put(f"/flows/{flow_id}", json=flow)
    publisher = Publisher(stack.bootstrap)
    await publisher.start()
    try:
        event = IngestSegmentEvent(event_id=str(uuid.uuid4()), flow_id=flow_id,
                                   timerange=TimeRange.parse("[10:0_12:0)"), media_size=2)
        await (await publisher.ingest(event, b"ok"))
    finally:
        await publisher.stop()

    def announced(values: list[bytes]) -> list[dict]:
        envelopes = [orjson.loads(v) for v in values]
        return [e for e in envelopes if e["event_type"] == "flows/segments_added" and e["event"]["flow_id"] == flow_id]

    records = await read_topic(stack.bootstrap, "tams.events", lambda vs: bool(announced(vs)))
    envelopes = announced([v for _, v in records])  # at-least-once: a redelivery may repeat one
    for envelope in envelopes:
        assert set(envelope) == {"event_timestamp", "event_type", "event"}
        (segment,) = envelope["event"]["segments"]
        assert segment["timerange"] == "[10:0_12:0)"
    created = [orjson.loads(v) for _, v in records if b'"flows/created"' in v and flow_id.encode() in v]
    assert created and created[0]["event"]["flow"]["id"] == flow_id


async def test_worker_counts_dead_letters_by_reason(stack: Stack, http: httpx.AsyncClient) -> None:
    port = stack.metrics_ports["worker"]

    async def unknown_flow_count() -> float:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        for line in text.splitlines():
            if line.startswith('tams_agent_dead_letters_total{reason="unknown_flow"}'):
                return float(line.split()[-1])
        return 0.0

    before = await unknown_flow_count()
    publisher = Publisher(stack.bootstrap)
    await publisher.start()
    try:
        event = IngestSegmentEvent(event_id="x", flow_id=uuid.uuid4(), timerange=TimeRange.parse("[0:0_1:0)"),
                                   object_id="nothing")
        await (await publisher.ingest(event))
    finally:
        await publisher.stop()
    for _ in range(300):
        if await unknown_flow_count() > before:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the dead letter was not counted")


def test_exported_schemas_accept_what_producers_send(tmp_path: Path) -> None:
    paths = {p.stem: p for p in write_schemas(tmp_path)}
    assert set(paths) == {"ingest-segment-event", "command", "command-reply", "event-envelope", "dead-letter"}
    schema = orjson.loads(paths["ingest-segment-event"].read_bytes())
    event = IngestSegmentEvent(event_id="e1", flow_id=uuid.uuid4(), timerange=TimeRange.parse("[0:0_1:0)"),
                               media_size=3, ts_offset=-5)
    header = encode_ingest_event(event, b"abc").split(b"\n", 1)[0]
    jsonschema.Draft202012Validator(schema).validate(orjson.loads(header))
    bad = {**orjson.loads(header), "timerange": "[oops"}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


async def test_tams_demo_publishes_segments_a_client_can_list(stack: Stack, http: httpx.AsyncClient) -> None:
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "tams.cli", "demo", "--segments", "12", "--rate", "200"],
        env=stack.env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    listing = next(line for line in result.stdout.splitlines() if "list them at" in line).split()[-1]
    flow_id = listing.rstrip("/").split("/")[-2]
    found = await wait_for_segments(http, [flow_id], 12, timeout=60)
    assert len(found[flow_id]) == 12
