"""Small builders shared by the conformance modules: flows, allocations, segments, official examples."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx

from tests.conftest import SPEC, video_flow

EXAMPLES = SPEC / "api" / "examples"
UNKNOWN_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"  # a valid UUID nothing in the store has
MALFORMED_ID = "not-a-uuid"


def uid() -> str:
    return str(uuid.uuid4())


def example(name: str) -> Any:
    """An official example from `api/examples`."""
    return json.loads((EXAMPLES / name).read_text())


def audio_flow(flow_id: str | None = None, source_id: str | None = None, **extra: object) -> dict[str, Any]:
    return {"id": flow_id or uid(), "source_id": source_id or uid(), "format": "urn:x-nmos:format:audio",
            "codec": "audio/aac", "container": "video/mp2t",
            "essence_parameters": {"sample_rate": 48000, "channels": 2}, **extra}


def multi_flow(members: list[str] | None = None, **extra: object) -> dict[str, Any]:
    """A multi flow without `container` (so it cannot hold segments), collecting `members`."""
    return {"id": uid(), "source_id": uid(), "format": "urn:x-nmos:format:multi",
            "flow_collection": [{"id": m} for m in members or []], **extra}


async def put_flow(tams: httpx.AsyncClient, flow: dict[str, Any]) -> dict[str, Any]:
    response = await tams.put(f"/flows/{flow['id']}", json=flow)
    assert response.status_code == 201, response.text
    return flow


async def new_flow(tams: httpx.AsyncClient, **extra: object) -> dict[str, Any]:
    """A new video flow (with container, so it takes segments) and its implicit source."""
    return await put_flow(tams, video_flow(**extra))


async def allocate(tams: httpx.AsyncClient, flow_id: str, count: int = 1, **body: object) -> list[str]:
    response = await tams.post(f"/flows/{flow_id}/storage", json={"limit": count, **body})
    assert response.status_code == 201, response.text
    return [o["object_id"] for o in response.json()["media_objects"]]


async def upload(tams: httpx.AsyncClient, flow_id: str, count: int = 1) -> list[str]:
    """Allocate `count` objects and PUT some bytes to each `put_url` (as a client uploads media)."""
    response = await tams.post(f"/flows/{flow_id}/storage", json={"limit": count})
    assert response.status_code == 201, response.text
    for media_object in response.json()["media_objects"]:
        put_url = media_object["put_url"]
        uploaded = await tams.put(put_url["url"], content=b"\x47" * 188,
                                  headers={"content-type": put_url["content-type"]})
        assert uploaded.status_code in (200, 201, 204), uploaded.text
    return [o["object_id"] for o in response.json()["media_objects"]]


async def add_segments(tams: httpx.AsyncClient, flow_id: str, timeranges: list[str],
                       **fields: object) -> list[str]:
    """Allocate one object per timerange and register them as segments (201); returns the object ids."""
    objects = await allocate(tams, flow_id, len(timeranges))
    posted = await tams.post(f"/flows/{flow_id}/segments", json=[
        {"object_id": o, "timerange": tr, **fields} for o, tr in zip(objects, timeranges, strict=True)])
    assert posted.status_code == 201, posted.text
    return objects


async def flow_with_segments(tams: httpx.AsyncClient, timeranges: list[str], **extra: object
                             ) -> tuple[dict[str, Any], list[str]]:
    flow = await new_flow(tams, **extra)
    return flow, await add_segments(tams, flow["id"], timeranges)


async def timeranges(tams: httpx.AsyncClient, flow_id: str, **params: str) -> list[str]:
    response = await tams.get(f"/flows/{flow_id}/segments", params={"limit": "1000", **params})
    assert response.status_code == 200, response.text
    return [s["timerange"] for s in response.json()]


async def all_pages(tams: httpx.AsyncClient, path: str, **params: str) -> tuple[list[Any], int]:
    """Follow `Link: rel="next"` from the first page; returns the items and the number of pages."""
    items: list[Any] = []
    pages = 0
    url: str | None = path
    query: dict[str, str] | None = params
    while url:
        response = await tams.get(url, params=query)
        assert response.status_code == 200, response.text
        items += response.json()
        pages += 1
        url, query = response.links.get("next", {}).get("url"), None
    return items, pages


async def ids(tams: httpx.AsyncClient, path: str, **params: str) -> list[str]:
    response = await tams.get(path, params={"limit": "1000", **params})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


async def same_as_get(tams: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
    """HEAD `path`, asserting the status and headers of the GET and an empty body; returns the HEAD response."""
    get = await tams.get(path, params=params)
    head = await tams.head(path, params=params)
    assert head.status_code == get.status_code
    assert head.content == b""
    ignored = {"date", "content-length", "server"}
    assert {k: v for k, v in head.headers.items() if k not in ignored} == {
        k: v for k, v in get.headers.items() if k not in ignored}
    return head


async def wait_for_deletion(tams: httpx.AsyncClient, location: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Poll a deletion request (the service deletes asynchronously after a 202) until it is done."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        response = await tams.get(location)
        assert response.status_code == 200, response.text
        request = response.json()
        if request["status"] in ("done", "error") or loop.time() > deadline:
            assert request["status"] == "done", request
            return request
        await asyncio.sleep(0.05)
