"""Ingest through an S3 server that is stopped midway and started again (s3rver keeps objects on disk).

Complements the frozen-server test in test_s3_media.py: here connections are refused outright
while S3 is down, and the server that comes back is a new process on the same port and directory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from schemas.ingest import IngestSegmentEvent
from schemas.timing import NS_PER_SEC, TimeRange
from stores.sigv4 import S3Presigner
from tests.conftest import video_flow
from tests.kafka_tools import all_segments, segments_at_least
from tests.s3rver_server import ACCESS_KEY, SECRET_KEY, S3rver
from tests.stack import Stack, launch_stack
from topics.producer import Publisher

BUCKET = "tams-restart"


@pytest.fixture(scope="module")
def s3rver_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, list[S3rver]]]:
    base = tmp_path_factory.mktemp("s3rver-stack")
    server = S3rver.start(base / "s3", BUCKET)
    servers = [server]
    (base / "stack").mkdir()
    try:
        stack = launch_stack(base / "stack", env={
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "TAMS_MEDIA_URL": f"s3://{BUCKET}/media", "TAMS_S3_ENDPOINT": server.endpoint,
            "TAMS_S3_ADDRESSING_STYLE": "path", "TAMS_S3_TIMEOUT_S": "1", "TAMS_MEDIA_RETRY_MAX_S": "1"})
        try:
            yield stack, servers
        finally:
            stack.stop()
    finally:
        for s in servers:
            s.stop()


@pytest.mark.slow
async def test_ingest_resumes_after_s3_is_stopped_and_started_again(s3rver_stack: tuple[Stack, list[S3rver]]
                                                                    ) -> None:
    stack, servers = s3rver_stack
    segment = NS_PER_SEC // 25
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as api:
        flow = video_flow()
        assert (await api.put(f"/flows/{flow['id']}", json=flow)).status_code == 201
        flow_id = str(flow["id"])
        events = [(IngestSegmentEvent(event_id=f"e{i}", flow_id=flow_id, media_size=256,
                                      timerange=TimeRange.from_half_open(i * segment, (i + 1) * segment)),
                   i.to_bytes(4, "big") * 64) for i in range(200)]
        publisher = Publisher(stack.bootstrap)
        await publisher.start()
        try:
            for event, media in events[:80]:
                await publisher.ingest(event, media)
            await publisher.flush()
            await segments_at_least(api, flow_id, 80)

            servers[0].stop()  # S3 is gone: connections are refused
            for event, media in events[80:]:
                await publisher.ingest(event, media)
            await publisher.flush()
            deadline = time.monotonic() + 60
            # The agent meets the refused connections and backs off.
            while stack.worker_metric("tams_agent_media_retries_total") == 0:
                assert time.monotonic() < deadline, "the agent never retried against the stopped S3"
                await asyncio.sleep(0.2)
            assert len(await all_segments(api, flow_id)) == 80  # nothing applied without its media

            servers.append(S3rver.start(servers[0].directory, BUCKET, port=servers[0].port))
            found = await segments_at_least(api, flow_id, len(events))
        finally:
            await publisher.stop()
        assert [s["timerange"] for s in found] == [str(e.timerange) for e, _ in events]
        assert stack.processes["worker"].poll() is None

        signer = S3Presigner(endpoint_url=servers[-1].endpoint, region="us-east-1", bucket=BUCKET,
                             access_key=ACCESS_KEY, secret_key=SECRET_KEY, addressing_style="path")
        async with httpx.AsyncClient(timeout=30) as raw:
            for segment_doc, (_, media) in zip(found, events, strict=True):
                body = await raw.get(signer.presign("GET", f"media/{segment_doc['object_id']}", 60))
                assert body.status_code == 200 and body.content == media
