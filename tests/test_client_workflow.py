"""The TAMS client workflow against the real stack: PUT flow, allocate, upload, register, list, download."""

from __future__ import annotations

import os
import uuid

import httpx

from tests.conftest import video_flow


async def test_put_flow_then_get_returns_it_with_an_implicit_source(http: httpx.AsyncClient) -> None:
    flow = video_flow(label="camera 1")
    created = await http.put(f"/flows/{flow['id']}", json=flow)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == flow["id"]
    got = (await http.get(f"/flows/{flow['id']}")).json()
    assert got["label"] == "camera 1" and got["source_id"] == flow["source_id"]
    assert "created" in got and "metadata_updated" in got
    replaced = await http.put(f"/flows/{flow['id']}", json={**flow, "label": "camera one"})
    assert replaced.status_code == 204
    assert (await http.get(f"/flows/{flow['id']}")).json()["label"] == "camera one"


async def test_client_workflow_returns_byte_identical_media(http: httpx.AsyncClient) -> None:
    flow = video_flow()
    flow_id = flow["id"]
    assert (await http.put(f"/flows/{flow_id}", json=flow)).status_code == 201

    allocation = await http.post(f"/flows/{flow_id}/storage", json={"limit": 3})
    assert allocation.status_code == 201, allocation.text
    objects = allocation.json()["media_objects"]
    assert len(objects) == 3
    payloads = {}
    for i, obj in enumerate(objects):
        payload = os.urandom(50_000 + i)
        put = obj["put_url"]
        uploaded = await http.put(put["url"], content=payload, headers={"Content-Type": put["content-type"]})
        assert uploaded.status_code == 200, uploaded.text
        payloads[obj["object_id"]] = payload

    posts = [{"object_id": obj["object_id"], "timerange": f"[{i * 2}:0_{i * 2 + 2}:0)", "key_frame_count": 1}
             for i, obj in enumerate(objects)]
    registered = await http.post(f"/flows/{flow_id}/segments", json=posts)
    assert registered.status_code == 201, registered.text

    listed = await http.get(f"/flows/{flow_id}/segments")
    assert listed.status_code == 200
    segments = listed.json()
    assert [s["timerange"] for s in segments] == ["[0:0_2:0)", "[2:0_4:0)", "[4:0_6:0)"]
    for segment in segments:
        (url,) = segment["get_urls"]
        downloaded = await http.get(url["url"])
        assert downloaded.status_code == 200
        assert downloaded.content == payloads[segment["object_id"]]


async def test_segments_query_honours_timerange_clusivity(http: httpx.AsyncClient) -> None:
    flow = video_flow()
    flow_id = flow["id"]
    await http.put(f"/flows/{flow_id}", json=flow)
    ids = [o["object_id"] for o in (await http.post(f"/flows/{flow_id}/storage", json={"limit": 2})).json()[
        "media_objects"]]
    posted = await http.post(f"/flows/{flow_id}/segments", json=[
        {"object_id": ids[0], "timerange": "[1:0_2:0)"}, {"object_id": ids[1], "timerange": "[2:0]"}])
    assert posted.status_code == 201, posted.text

    async def ranges(query: str) -> list[str]:
        response = await http.get(f"/flows/{flow_id}/segments", params={"timerange": query})
        assert response.status_code == 200, response.text
        return [s["timerange"] for s in response.json()]

    assert await ranges("[2:0_3:0)") == ["[2:0]"]
    assert await ranges("(1:0_2:0)") == ["[1:0_2:0)"]
    assert await ranges("[0:0_1:0)") == []
    assert await ranges("[0:0_1:0]") == ["[1:0_2:0)"]
    assert await ranges("(2:0_3:0)") == []
    assert await ranges("_") == ["[1:0_2:0)", "[2:0]"]
    assert await ranges("()") == []


async def test_overlapping_segment_post_is_refused_and_stores_nothing(http: httpx.AsyncClient) -> None:
    flow = video_flow()
    flow_id = flow["id"]
    await http.put(f"/flows/{flow_id}", json=flow)
    ids = [o["object_id"] for o in (await http.post(f"/flows/{flow_id}/storage", json={"limit": 3})).json()[
        "media_objects"]]
    assert (await http.post(f"/flows/{flow_id}/segments",
                            json={"object_id": ids[0], "timerange": "[0:0_10:0)"})).status_code == 201
    refused = await http.post(f"/flows/{flow_id}/segments", json={"object_id": ids[1], "timerange": "[5:0_15:0)"})
    assert refused.status_code == 400
    assert "overlaps" in refused.json()["summary"]
    partial = await http.post(f"/flows/{flow_id}/segments", json=[
        {"object_id": ids[1], "timerange": "[9:0_11:0)"}, {"object_id": ids[2], "timerange": "[10:0_12:0)"}])
    assert partial.status_code == 200
    (failed,) = partial.json()["failed_segments"]
    assert failed["object_id"] == ids[1]
    listed = (await http.get(f"/flows/{flow_id}/segments")).json()
    assert [s["timerange"] for s in listed] == ["[0:0_10:0)", "[10:0_12:0)"]


async def test_segments_of_an_unknown_flow_are_an_empty_list(http: httpx.AsyncClient) -> None:
    response = await http.get(f"/flows/{uuid.uuid4()}/segments")
    assert response.status_code == 200 and response.json() == []


async def test_bad_requests_get_400_with_a_message(http: httpx.AsyncClient) -> None:
    flow_id = str(uuid.uuid4())
    bad_json = await http.put(f"/flows/{flow_id}", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["summary"]
    no_rate = video_flow(flow_id)
    no_rate["essence_parameters"] = {"frame_width": 10, "frame_height": 10}
    invalid = await http.put(f"/flows/{flow_id}", json=no_rate)
    assert invalid.status_code == 400 and invalid.json()["summary"]
    bad_range = await http.get(f"/flows/{flow_id}/segments", params={"timerange": "[1:0_nonsense"})
    assert bad_range.status_code == 400 and "timerange" in bad_range.json()["summary"]
    missing = await http.get(f"/flows/{flow_id}")
    assert missing.status_code == 404 and {"type", "summary", "time"} <= set(missing.json())


async def test_allocated_object_ids_are_time_ordered_uuids(http: httpx.AsyncClient) -> None:
    """Ids of later allocations sort after earlier ones, so a batch's objects share index pages."""
    flow = video_flow()
    assert (await http.put(f"/flows/{flow['id']}", json=flow)).status_code == 201
    ids: list[str] = []
    for _ in range(2):
        r = await http.post(f"/flows/{flow['id']}/storage", json={"limit": 50})
        assert r.status_code == 201, r.text
        ids += [o["object_id"] for o in r.json()["media_objects"]]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 100
