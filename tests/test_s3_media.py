"""Media on S3: the pipeline against a real S3 HTTP server (moto), with three storage backends.

The default backend is the bucket `tams-media` (prefix `objects`); `tams-copies` is a second S3
backend on the same server (server-side copies) and `local-copies` a local directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import botocore.exceptions
import httpx
import pytest

from schemas.ingest import IngestSegmentEvent
from schemas.timing import NS_PER_SEC, TimeRange
from stores.metadata import ObjectRecord
from stores.sqlite import SqliteMetadataStore
from tests.conftest import video_flow
from tests.kafka_tools import all_segments, segments_at_least
from tests.s3_server import CREDENTIALS, MotoServer
from tests.stack import Stack, launch_stack
from topics.producer import Publisher

PRIMARY, COPIES = "tams-media", "tams-copies"
ALLOCATION_TIMEOUT_S = 3


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer.start(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        client = server.client()
        for bucket in (PRIMARY, COPIES):
            client.create_bucket(Bucket=bucket)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_stack(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("s3-stack")
    extra = [{"media_url": f"s3://{COPIES}/c", "label": "copies", "tags": {"tier": "archive"}, "s3_plain_urls": True},
             {"media_url": f"file://{data_dir / 'local-copies'}", "label": "local-copies"}]
    stack = launch_stack(data_dir, env={
        **CREDENTIALS,
        "TAMS_MEDIA_URL": f"s3://{PRIMARY}/objects",
        "TAMS_MEDIA_LABEL": "primary",
        "TAMS_S3_ENDPOINT": moto.endpoint,
        "TAMS_S3_ADDRESSING_STYLE": "path",
        "TAMS_S3_TIMEOUT_S": "1",
        "TAMS_MEDIA_RETRY_MAX_S": "1",
        "TAMS_EXTRA_STORAGE_BACKENDS": json.dumps(extra),
        "TAMS_MIN_OBJECT_TIMEOUT_S": str(ALLOCATION_TIMEOUT_S),
        "TAMS_PRESIGNED_URL_TIMEOUT_S": str(ALLOCATION_TIMEOUT_S),
        "TAMS_GC_INTERVAL_S": "0.5",
    })
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
async def api(s3_stack: Stack) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=s3_stack.base_url, timeout=120.0) as client:
        yield client


async def backends(api: httpx.AsyncClient) -> dict[str, dict]:
    response = await api.get("/service/storage-backends")
    assert response.status_code == 200
    return {b["label"]: b for b in response.json()}


async def new_flow(api: httpx.AsyncClient) -> str:
    flow = video_flow()
    assert (await api.put(f"/flows/{flow['id']}", json=flow)).status_code == 201
    return str(flow["id"])


async def upload(api: httpx.AsyncClient, flow_id: str, payloads: list[bytes], storage_id: str | None = None
                 ) -> list[str]:
    """Allocate, then PUT each payload to its presigned URL as a TAMS client does."""
    body: dict[str, object] = {"limit": len(payloads)}
    if storage_id:
        body["storage_id"] = storage_id
    response = await api.post(f"/flows/{flow_id}/storage", json=body)
    assert response.status_code == 201, response.text
    objects = response.json()["media_objects"]
    async with httpx.AsyncClient(timeout=30) as raw:
        for obj, payload in zip(objects, payloads, strict=True):
            put = obj["put_url"]
            answer = await raw.put(put["url"], content=payload, headers={"content-type": put["content-type"]})
            assert answer.status_code == 200, answer.text
    return [o["object_id"] for o in objects]


async def register(api: httpx.AsyncClient, flow_id: str, object_id: str, second: int) -> None:
    response = await api.post(f"/flows/{flow_id}/segments",
                              json={"object_id": object_id, "timerange": f"[{second}:0_{second + 1}:0)"})
    assert response.status_code == 201, response.text


def stored_bytes(moto: MotoServer, bucket: str, key: str) -> bytes | None:
    try:
        return moto.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] in ("NoSuchKey", "404"), exc
        return None


async def wait_until(condition, timeout: float = 30.0, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_storage_backends_are_listed_with_one_default(api: httpx.AsyncClient, moto: MotoServer) -> None:
    listed = await backends(api)
    assert set(listed) == {"primary", "copies", "local-copies"}
    assert [label for label, b in listed.items() if b["default_storage"]] == ["primary"]
    for backend in listed.values():
        assert backend["store_type"] == "http_object_store"
        assert backend["provider"] and backend["store_product"] and uuid.UUID(backend["id"])
    assert listed["copies"]["tags"] == {"tier": "archive"}
    assert listed["primary"]["region"] == "us-east-1"


async def object_records(stack: Stack, object_ids: list[str]) -> dict[str, ObjectRecord]:
    store = SqliteMetadataStore(stack.data_dir / "tams.db", readers=1)
    await store.open()
    try:
        return await store.get_objects(object_ids)
    finally:
        await store.close()


@pytest.mark.slow
async def test_client_workflow_through_presigned_s3_put_and_get(
        s3_stack: Stack, api: httpx.AsyncClient, moto: MotoServer) -> None:
    flow_id = await new_flow(api)
    payloads = [b"first segment " * 100, "second segment \u00e9".encode() * 50]
    object_ids = await upload(api, flow_id, payloads)
    for i, object_id in enumerate(object_ids):
        await register(api, flow_id, object_id, i)
        assert stored_bytes(moto, PRIMARY, f"objects/{object_id}") == payloads[i]
    records = await object_records(s3_stack, object_ids)
    for object_id, payload in zip(object_ids, payloads, strict=True):  # size and checksum, read back from S3
        assert records[object_id].size == len(payload)
        assert records[object_id].checksum == f"etag:{hashlib.md5(payload).hexdigest()}"

    response = await api.get(f"/flows/{flow_id}/segments", params={"verbose_storage": "true"})
    assert response.status_code == 200
    segments = response.json()
    assert [s["object_id"] for s in segments] == object_ids
    primary = (await backends(api))["primary"]
    async with httpx.AsyncClient(timeout=30) as raw:
        for segment, payload in zip(segments, payloads, strict=True):
            [url] = segment["get_urls"]
            assert url["presigned"] is True and url["label"] == "primary" and url["controlled"] is True
            assert url["storage_id"] == primary["id"]
            query = parse_qs(urlparse(url["url"]).query)
            assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
            assert int(query["X-Amz-Expires"][0]) >= ALLOCATION_TIMEOUT_S  # the advertised minimum
            assert urlparse(url["url"]).path == f"/{PRIMARY}/objects/{segment['object_id']}"
            assert (await raw.get(url["url"])).content == payload

    unsigned = await api.get(f"/flows/{flow_id}/segments", params={"accept_get_urls": ""})
    assert all("get_urls" not in s for s in unsigned.json())
    not_presigned = await api.get(f"/flows/{flow_id}/segments", params={"presigned": "false"})
    assert all("get_urls" not in s for s in not_presigned.json())  # no backend here offers unsigned URLs


@pytest.mark.slow
async def test_storage_id_picks_the_backend_objects_are_uploaded_to(api: httpx.AsyncClient, moto: MotoServer) -> None:
    flow_id = await new_flow(api)
    copies = (await backends(api))["copies"]
    [object_id] = await upload(api, flow_id, [b"archived bytes"], storage_id=copies["id"])
    await register(api, flow_id, object_id, 0)
    assert stored_bytes(moto, COPIES, f"c/{object_id}") == b"archived bytes"
    assert stored_bytes(moto, PRIMARY, f"objects/{object_id}") is None
    [segment] = (await api.get(f"/flows/{flow_id}/segments", params={"presigned": "true"})).json()
    assert [u["label"] for u in segment["get_urls"]] == ["copies"]

    # This backend is configured to offer unsigned URLs too: presigned=false asks for those alone.
    [unsigned] = (await api.get(f"/flows/{flow_id}/segments", params={"presigned": "false"})).json()
    [plain] = unsigned["get_urls"]
    assert plain == {"url": f"{moto.endpoint}/{COPIES}/c/{object_id}", "presigned": False, "label": "copies"}
    [both] = (await api.get(f"/flows/{flow_id}/segments")).json()
    assert [u["presigned"] for u in both["get_urls"]] == [True, False]
    assert both["get_urls"][0]["url"].split("?")[0] == plain["url"]  # the same object, signed or not

    unknown = await api.post(f"/flows/{flow_id}/storage", json={"limit": 1, "storage_id": str(uuid.uuid4())})
    assert unknown.status_code == 400 and "not a storage backend" in unknown.json()["summary"]


@pytest.mark.slow
async def test_controlled_copies_are_listed_once_complete_and_deleted_on_request(
        api: httpx.AsyncClient, moto: MotoServer) -> None:
    flow_id = await new_flow(api)
    listed = await backends(api)
    payload = b"copy me " * 1000
    [object_id] = await upload(api, flow_id, [payload])
    await register(api, flow_id, object_id, 0)

    for label in ("copies", "local-copies"):
        response = await api.post(f"/objects/{object_id}/instances", json={"storage_id": listed[label]["id"]})
        assert response.status_code == 201, response.text
    assert stored_bytes(moto, COPIES, f"c/{object_id}") == payload

    obj = (await api.get(f"/objects/{object_id}", params={"verbose_storage": "true", "presigned": "true"})).json()
    assert [u["label"] for u in obj["get_urls"]] == ["primary", "copies", "local-copies"]
    async with httpx.AsyncClient(timeout=30) as raw:
        for url in obj["get_urls"]:
            assert (await raw.get(url["url"])).content == payload, url["label"]
    only_archive = (await api.get(f"/objects/{object_id}", params={"storage_backend_tag.tier": "archive",
                                                                    "presigned": "true"})).json()
    assert [u["label"] for u in only_archive["get_urls"]] == ["copies"]

    again = await api.post(f"/objects/{object_id}/instances", json={"storage_id": listed["copies"]["id"]})
    assert again.status_code == 400

    removed = await api.delete(f"/objects/{object_id}/instances", params={"storage_id": listed["copies"]["id"]})
    assert removed.status_code == 204
    assert stored_bytes(moto, COPIES, f"c/{object_id}") is None
    assert stored_bytes(moto, PRIMARY, f"objects/{object_id}") == payload
    for label in ("primary",):  # the local copy stays the last one; primary goes, then the last is refused
        response = await api.delete(f"/objects/{object_id}/instances", params={"storage_id": listed[label]["id"]})
        assert response.status_code == 204
    assert stored_bytes(moto, PRIMARY, f"objects/{object_id}") is None
    last = await api.delete(f"/objects/{object_id}/instances", params={"storage_id": listed["local-copies"]["id"]})
    assert last.status_code == 400 and "only controlled instance" in last.json()["summary"]
    obj = (await api.get(f"/objects/{object_id}")).json()
    assert [u["label"] for u in obj["get_urls"]] == ["local-copies"]


@pytest.mark.slow
async def test_abandoned_allocations_are_collected_with_their_bytes_and_nothing_else(
        api: httpx.AsyncClient, moto: MotoServer) -> None:
    flow_id = await new_flow(api)
    kept, abandoned = await upload(api, flow_id, [b"registered", b"never registered"])
    await register(api, flow_id, kept, 0)
    assert stored_bytes(moto, PRIMARY, f"objects/{abandoned}") == b"never registered"

    await wait_until(lambda: stored_bytes(moto, PRIMARY, f"objects/{abandoned}") is None,
                     timeout=ALLOCATION_TIMEOUT_S + 30, what="the abandoned allocation to be collected")
    assert stored_bytes(moto, PRIMARY, f"objects/{kept}") == b"registered"
    assert (await api.get(f"/objects/{kept}")).status_code == 200
    # The collected id is free again: registering it now is refused as never allocated.
    late = await api.post(f"/flows/{flow_id}/segments", json={"object_id": abandoned, "timerange": "[5:0_6:0)"})
    assert late.status_code == 400


@pytest.mark.slow
async def test_bytes_go_with_the_last_reference_not_before(api: httpx.AsyncClient, moto: MotoServer) -> None:
    first, second = await new_flow(api), await new_flow(api)
    [object_id] = await upload(api, first, [b"shared object"])
    await register(api, first, object_id, 0)
    await register(api, second, object_id, 0)  # reuse in another flow, within the object's timerange

    assert (await api.delete(f"/flows/{first}/segments")).status_code == 204
    assert stored_bytes(moto, PRIMARY, f"objects/{object_id}") == b"shared object"
    assert (await api.get(f"/objects/{object_id}")).json()["referenced_by_flows"] == [second]

    assert (await api.delete(f"/flows/{second}/segments")).status_code == 204
    assert stored_bytes(moto, PRIMARY, f"objects/{object_id}") is None
    assert (await api.get(f"/objects/{object_id}")).status_code == 404


@pytest.mark.slow
async def test_ingest_waits_out_an_s3_outage_and_loses_nothing(
        s3_stack: Stack, api: httpx.AsyncClient, moto: MotoServer) -> None:
    flow_id = await new_flow(api)
    count, outage_at = 300, 100
    segment = NS_PER_SEC // 25
    events = [(IngestSegmentEvent(event_id=f"{flow_id}-{i}", flow_id=flow_id, media_size=512,
                                  timerange=TimeRange.from_half_open(i * segment, (i + 1) * segment)),
               i.to_bytes(4, "big") * 128) for i in range(count)]
    publisher = Publisher(s3_stack.bootstrap)
    await publisher.start()
    try:
        for event, media in events[:outage_at]:
            await publisher.ingest(event, media)
        await publisher.flush()
        await segments_at_least(api, flow_id, outage_at)

        retries_before = s3_stack.worker_metric("tams_agent_media_retries_total")
        moto.pause()
        try:
            for event, media in events[outage_at:]:
                await publisher.ingest(event, media)
            await publisher.flush()
            deadline = time.monotonic() + 60
            while s3_stack.worker_metric("tams_agent_media_retries_total") <= retries_before:
                assert time.monotonic() < deadline, "the agent never retried against the stopped S3"
                await asyncio.sleep(0.2)
            assert len(await all_segments(api, flow_id)) == outage_at  # nothing applied without its media
        finally:
            moto.resume()
        await segments_at_least(api, flow_id, count)
    finally:
        await publisher.stop()

    segments = await all_segments(api, flow_id)
    assert [s["timerange"] for s in segments] == [str(e.timerange) for e, _ in events]
    objects = {s["timerange"]: s["object_id"] for s in segments}
    for event, media in events:
        assert stored_bytes(moto, PRIMARY, f"objects/{objects[str(event.timerange)]}") == media
    assert s3_stack.processes["worker"].poll() is None  # it waited, it did not crash
    records = await object_records(s3_stack, list(objects.values()))
    for event, media in events:  # inline media: size and checksum recorded as the agent stored them
        record = records[objects[str(event.timerange)]]
        assert (record.size, record.checksum) == (len(media), f"md5:{hashlib.md5(media).hexdigest()}")


def test_moto_server_is_real_http(moto: MotoServer, tmp_path: Path) -> None:
    """The S3 tests above talk HTTP to a separate server process, not to an in-process mock."""
    assert moto.process.poll() is None
    assert httpx.get(f"{moto.endpoint}/{PRIMARY}?list-type=2").status_code == 200
