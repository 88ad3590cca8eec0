"""`tams demo`: plays an encoder, so a newcomer sees segments arrive in the store."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx

from schemas.ingest import IngestSegmentEvent
from schemas.timing import NS_PER_SEC, TimeRange
from tams.settings import Settings
from topics.producer import Publisher

SEGMENT_NS = 2 * NS_PER_SEC  # two-second segments of 25 fps video


def demo_flow(flow_id: str, source_id: str) -> dict[str, object]:
    return {
        "id": flow_id, "source_id": source_id, "format": "urn:x-nmos:format:video", "label": "tams demo",
        "codec": "video/h264", "container": "video/mp2t",
        "essence_parameters": {"frame_width": 1920, "frame_height": 1080, "frame_rate": {"numerator": 25}},
        "tags": {"created_by_demo": "true"},
    }


async def run_demo(settings: Settings, *, segments: int, rate: float) -> int:
    flow_id, source_id = str(uuid.uuid4()), str(uuid.uuid4())
    base = settings.api_base_url
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as http:
        response = await http.put(f"/flows/{flow_id}", json=demo_flow(flow_id, source_id))
        if response.status_code not in (201, 204):
            print(f"[demo] could not create the flow: {response.status_code} {response.text}")
            return 1
        print(f"[demo] created flow {flow_id}")
        publisher = Publisher(settings.kafka_bootstrap)
        await publisher.start()
        try:
            print(f"[demo] publishing {segments} segment events to tams.ingest.segments at {rate:g}/s")
            start_ns = time.time_ns() // NS_PER_SEC * NS_PER_SEC
            for i in range(segments):
                media = b"\x47" + os.urandom(187) * 4  # a few MPEG-TS-sized packets of noise
                event = IngestSegmentEvent(
                    event_id=f"demo-{flow_id}-{i}", flow_id=flow_id,
                    timerange=TimeRange.from_half_open(start_ns + i * SEGMENT_NS, start_ns + (i + 1) * SEGMENT_NS),
                    media_size=len(media), key_frame_count=1,
                )
                await (await publisher.ingest(event, media))
                if (i + 1) % max(1, segments // 10) == 0:
                    print(f"[demo] published {i + 1}/{segments}")
                await asyncio.sleep(1 / rate)
        finally:
            await publisher.stop()
        listing = f"{base}/flows/{flow_id}/segments"
        for _ in range(100):
            count = len((await http.get(f"/flows/{flow_id}/segments", params={"limit": 1000})).json())
            if count >= segments:
                break
            await asyncio.sleep(0.1)
        print(f"[demo] {count} segments stored; list them at {listing}")
    return 0
