"""What the running API returns validates against the official TAMS 8.2 JSON Schemas."""

from __future__ import annotations

import httpx

from tests.conftest import video_flow
from tests.test_resources import assert_valid


async def test_get_service_validates_against_service_schema(http: httpx.AsyncClient) -> None:
    body = (await http.get("/service")).json()
    assert_valid(body, "service.json")
    assert body["api_version"] == "8.2"


async def test_get_flow_and_segments_validate_against_their_schemas(http: httpx.AsyncClient) -> None:
    flow = video_flow(label="schema check", tags={"genre": ["news", "live"]})
    flow_id = flow["id"]
    assert (await http.put(f"/flows/{flow_id}", json=flow)).status_code == 201
    (obj,) = (await http.post(f"/flows/{flow_id}/storage", json={"limit": 1})).json()["media_objects"]
    assert (await http.post(f"/flows/{flow_id}/segments", json={
        "object_id": obj["object_id"], "timerange": "[0:0_2:0)", "ts_offset": "0:0", "last_duration": "0:40000000",
        "key_frame_count": 1})).status_code == 201
    assert_valid((await http.get(f"/flows/{flow_id}", params={"include_timerange": "true"})).json(), "flow-get.json")
    for params in ({}, {"verbose_storage": "true", "include_object_timerange": "true"}):
        (segment,) = (await http.get(f"/flows/{flow_id}/segments", params=params)).json()
        assert_valid(segment, "flow-segment.json")
    storage = (await http.post(f"/flows/{flow_id}/storage", json={"limit": 2})).json()
    assert_valid(storage, "flow-storage.json")
    backends = (await http.get("/service/storage-backends")).json()
    assert_valid(backends, "storage-backends-list.json")


async def test_post_service_changes_name_and_description_and_keeps_them(http: httpx.AsyncClient) -> None:
    changed = await http.post("/service", json={"name": "archive", "description": "the main archive"})
    assert changed.status_code == 200, changed.text
    assert_valid(changed.json(), "service.json")
    body = (await http.get("/service")).json()
    assert body["name"] == "archive" and body["description"] == "the main archive"
    assert (await http.post("/service", json={"name": 5})).status_code == 400
