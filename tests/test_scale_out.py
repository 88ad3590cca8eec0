"""Scale-out: two agent workers and two API processes against one PostgreSQL and one broker.

Fifty flows are written concurrently through both paths (encoder events on Kafka for even
segments, TAMS REST uploads for odd ones, spread over both APIs); one worker is killed with SIGKILL
midway. At the end every flow has exactly its segments, once each, and both APIs agree.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from schemas.ingest import IngestSegmentEvent
from schemas.timing import NS_PER_SEC, TimeRange
from tests.conftest import video_flow
from tests.kafka_tools import all_segments
from tests.pg_server import PostgresServer
from tests.stack import Stack, free_port, launch_stack
from topics.producer import Publisher

FLOWS = 50
PER_FLOW = 24  # 12 through Kafka, 12 through REST
SEGMENT = NS_PER_SEC // 2


def timerange(index: int) -> TimeRange:
    return TimeRange.from_half_open(index * SEGMENT, (index + 1) * SEGMENT)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer.start(tmp_path_factory.mktemp("scale-pg"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scaled(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[str]]]:
    data_dir = tmp_path_factory.mktemp("scale-out")
    dsn = asyncio.run(postgres.fresh_database())
    stack = launch_stack(data_dir, workers=2, env={"TAMS_METADATA_URL": dsn,
                                                   "TAMS_MEDIA_URL": f"file://{data_dir / 'media'}"})
    try:
        second = stack.start_api("api-2", port=free_port())
        yield stack, [stack.base_url, second]
    finally:
        stack.stop()


async def upload_by_rest(api: httpx.AsyncClient, flow_id: str, index: int) -> None:
    """Allocate, PUT the bytes to the signed URL, register: the TAMS client workflow."""
    response = await api.post(f"/flows/{flow_id}/storage", json={"limit": 1})
    assert response.status_code == 201, response.text
    [obj] = response.json()["media_objects"]
    put = await api.put(obj["put_url"]["url"], content=media(flow_id, index),
                        headers={"content-type": obj["put_url"]["content-type"]})
    assert put.status_code == 200, put.text
    posted = await api.post(f"/flows/{flow_id}/segments",
                            json={"object_id": obj["object_id"], "timerange": str(timerange(index))})
    assert posted.status_code == 201, posted.text


def media(flow_id: str, index: int) -> bytes:
    return f"{flow_id}:{index}".encode() * 16


@pytest.mark.slow
async def test_two_workers_two_apis_one_postgres_survive_a_worker_kill(scaled: tuple[Stack, list[str]]) -> None:
    stack, bases = scaled
    apis = [httpx.AsyncClient(base_url=b, timeout=180) for b in bases]
    publisher = Publisher(stack.bootstrap)
    await publisher.start()
    try:
        flows = [video_flow() for _ in range(FLOWS)]
        await asyncio.gather(*(apis[i % 2].put(f"/flows/{f['id']}", json=f) for i, f in enumerate(flows)))
        flow_ids = [str(f["id"]) for f in flows]

        rest_jobs = [(flow_id, i) for flow_id in flow_ids for i in range(1, PER_FLOW, 2)]
        random.Random(7).shuffle(rest_jobs)
        killed = asyncio.Event()

        async def rest_writer(lane: int) -> None:
            for n, (flow_id, index) in enumerate(rest_jobs[lane::8]):
                await upload_by_rest(apis[(lane + n) % 2], flow_id, index)

        async def kafka_writer() -> None:
            events = [(flow_id, i) for i in range(0, PER_FLOW, 2) for flow_id in flow_ids]
            for n, (flow_id, index) in enumerate(events):
                event = IngestSegmentEvent(event_id=f"{flow_id}-{index}", flow_id=flow_id, timerange=timerange(index),
                                           media_size=len(media(flow_id, index)))
                await publisher.ingest(event, media(flow_id, index))
                if n == len(events) // 2:
                    await publisher.flush()
                    stack.kill_worker("worker-1")  # SIGKILL: no goodbye, the group notices by timeout
                    killed.set()
            await publisher.flush()

        await asyncio.gather(kafka_writer(), *(rest_writer(lane) for lane in range(8)))
        assert killed.is_set()

        expected = [str(timerange(i)) for i in range(PER_FLOW)]
        deadline = asyncio.get_running_loop().time() + 180
        while True:
            found = {f: await all_segments(apis[0], f) for f in flow_ids}
            if all(len(v) >= PER_FLOW for v in found.values()):
                break
            assert asyncio.get_running_loop().time() < deadline, \
                f"{sum(len(v) for v in found.values())} of {FLOWS * PER_FLOW} segments"
            await asyncio.sleep(0.5)
        for flow_id, segments in found.items():
            assert [s["timerange"] for s in segments] == expected, f"flow {flow_id}: gaps or duplicates"
            other = await all_segments(apis[1], flow_id)
            assert other == segments, f"the two APIs disagree on flow {flow_id}"
        # Every object's bytes are where its URL says, whichever path wrote them.
        sample = found[flow_ids[0]]
        listed = (await apis[1].get(f"/flows/{flow_ids[0]}/segments")).json()
        for index, segment in enumerate(listed):
            assert segment["object_id"] == sample[index]["object_id"]
            body = await apis[1].get(segment["get_urls"][0]["url"])
            assert body.content == media(flow_ids[0], index)
        assert stack.processes["worker-2"].poll() is None
    finally:
        await publisher.stop()
        for api in apis:
            await api.aclose()


def test_the_scale_out_stack_really_uses_postgres(scaled: tuple[Stack, list[str]]) -> None:
    stack, _ = scaled
    assert stack.env["TAMS_METADATA_URL"].startswith("postgresql://")
    assert not (Path(stack.data_dir) / "tams.db").exists()
