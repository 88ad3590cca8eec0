"""Deleting segments and flows: completely covered segments only, objects reference-counted across flows."""

from __future__ import annotations

import asyncio
import os

import httpx

from tests.conftest import video_flow
from tests.test_resources import assert_valid


async def flow_with_objects(http: httpx.AsyncClient, count: int, **extra: object) -> tuple[dict, list[dict]]:
    flow = video_flow(**extra)
    assert (await http.put(f"/flows/{flow['id']}", json=flow)).status_code == 201
    objects = (await http.post(f"/flows/{flow['id']}/storage", json={"limit": count})).json()["media_objects"]
    for obj in objects:
        assert (await http.put(obj["put_url"]["url"], content=os.urandom(100))).status_code == 200
    return flow, objects


async def ranges(http: httpx.AsyncClient, flow_id: str) -> list[str]:
    return [s["timerange"] for s in (await http.get(f"/flows/{flow_id}/segments")).json()]


async def test_delete_segments_removes_only_those_completely_covered(http: httpx.AsyncClient) -> None:
    flow, objects = await flow_with_objects(http, 3)
    flow_id = flow["id"]
    await http.post(f"/flows/{flow_id}/segments", json=[
        {"object_id": o["object_id"], "timerange": f"[{2 * i}:0_{2 * i + 2}:0)"} for i, o in enumerate(objects)])
    assert (await http.delete(f"/flows/{flow_id}/segments", params={"timerange": "[1:0_5:0)"})).status_code == 204
    assert await ranges(http, flow_id) == ["[0:0_2:0)", "[4:0_6:0)"]
    got = (await http.get(f"/flows/{flow_id}", params={"include_timerange": "true"})).json()
    assert got["timerange"] == "[0:0_6:0)"
    assert (await http.delete(f"/flows/{flow_id}/segments",
                              params={"object_id": objects[2]["object_id"]})).status_code == 204
    assert await ranges(http, flow_id) == ["[0:0_2:0)"]
    got = (await http.get(f"/flows/{flow_id}", params={"include_timerange": "true"})).json()
    assert got["timerange"] == "[0:0_2:0)"


async def test_bytes_go_with_the_last_reference_from_any_flow(http: httpx.AsyncClient) -> None:
    first, (shared,) = await flow_with_objects(http, 1)
    second = video_flow()
    await http.put(f"/flows/{second['id']}", json=second)
    object_id = shared["object_id"]
    assert (await http.post(f"/flows/{first['id']}/segments",
                            json={"object_id": object_id, "timerange": "[0:0_10:0)"})).status_code == 201
    reuse = await http.post(f"/flows/{second['id']}/segments",
                            json={"object_id": object_id, "timerange": "[100:0_102:0)", "ts_offset": "100:0"})
    assert reuse.status_code == 201, reuse.text
    (segment,) = (await http.get(f"/flows/{second['id']}/segments")).json()
    url = segment["get_urls"][0]["url"]

    await http.delete(f"/flows/{first['id']}/segments")
    assert (await http.get(url)).status_code == 200  # the second flow still uses the object
    await http.delete(f"/flows/{second['id']}/segments")
    assert (await http.get(url)).status_code == 404  # last reference gone: bytes deleted


async def test_init_objects_are_counted_through_the_segments_that_use_them(http: httpx.AsyncClient) -> None:
    essence = {"frame_width": 1920, "frame_height": 1080, "frame_rate": {"numerator": 25}, "init_segments": True}
    flow, objects = await flow_with_objects(http, 3, essence_parameters=essence)
    init, media_a, media_b = (o["object_id"] for o in objects)
    flow_id = flow["id"]
    posted = await http.post(f"/flows/{flow_id}/segments", json=[
        {"object_id": media_a, "timerange": "[0:0_2:0)", "init_object_id": init},
        {"object_id": media_b, "timerange": "[2:0_4:0)", "init_object_id": init}])
    assert posted.status_code == 201, posted.text
    (first,) = (await http.get(f"/flows/{flow_id}/segments", params={"timerange": "[0:0_1:0)"})).json()
    init_url = first["init_object"]["get_urls"][0]["url"]
    init_object = (await http.get(f"/objects/{init}")).json()  # referenced through its media objects' segments
    assert init_object["referenced_by_flows"] == [flow_id] and "timerange" not in init_object
    await http.delete(f"/flows/{flow_id}/segments", params={"timerange": "[0:0_2:0)"})
    assert (await http.get(init_url)).status_code == 200
    await http.delete(f"/flows/{flow_id}/segments", params={"timerange": "[2:0_4:0)"})
    assert (await http.get(init_url)).status_code == 404
    assert (await http.get(f"/objects/{init}")).status_code == 404


async def test_delete_flow_removes_it_and_its_source_with_the_last_flow(http: httpx.AsyncClient) -> None:
    flow, (obj,) = await flow_with_objects(http, 1)
    sibling = video_flow(source_id=flow["source_id"])
    await http.put(f"/flows/{sibling['id']}", json=sibling)
    await http.post(f"/flows/{flow['id']}/segments", json={"object_id": obj["object_id"], "timerange": "[0:0_1:0)"})
    url = (await http.get(f"/flows/{flow['id']}/segments")).json()[0]["get_urls"][0]["url"]
    assert (await http.delete(f"/flows/{flow['id']}")).status_code == 204
    assert (await http.get(f"/flows/{flow['id']}")).status_code == 404
    assert (await http.get(f"/flows/{flow['id']}/segments")).json() == []
    assert (await http.get(url)).status_code == 404
    assert (await http.get(f"/sources/{flow['source_id']}")).status_code == 200  # the sibling keeps it
    assert (await http.delete(f"/flows/{sibling['id']}")).status_code == 204
    assert (await http.get(f"/sources/{flow['source_id']}")).status_code == 404
    assert (await http.delete(f"/flows/{sibling['id']}")).status_code == 404


async def test_read_only_flow_cannot_be_deleted(http: httpx.AsyncClient) -> None:
    flow = video_flow(read_only=True)
    await http.put(f"/flows/{flow['id']}", json=flow)
    assert (await http.delete(f"/flows/{flow['id']}")).status_code == 403
    assert (await http.delete(f"/flows/{flow['id']}/segments")).status_code == 403


async def test_objects_list_the_flows_that_use_them_and_hide_unregistered_allocations(http: httpx.AsyncClient) -> None:
    flow, (used, unused) = await flow_with_objects(http, 2)
    other = video_flow()
    await http.put(f"/flows/{other['id']}", json=other)
    await http.post(f"/flows/{flow['id']}/segments",
                    json={"object_id": used["object_id"], "timerange": "[0:0_4:0)", "key_frame_count": 2})
    await http.post(f"/flows/{other['id']}/segments",
                    json={"object_id": used["object_id"], "timerange": "[0:0_1:0)"})
    body = (await http.get(f"/objects/{used['object_id']}")).json()
    assert sorted(body["referenced_by_flows"]) == sorted([flow["id"], other["id"]])
    assert body["first_referenced_by_flow"] == flow["id"]
    assert body["timerange"] == "[0:0_4:0)" and body["key_frame_count"] == 2
    assert (await http.get(body["get_urls"][0]["url"])).status_code == 200
    assert_valid(body, "object.json")
    assert (await http.get(f"/objects/{unused['object_id']}")).status_code == 404
    tagged = await http.get(f"/objects/{used['object_id']}", params={"flow_tag_exists.kind": "false"})
    assert sorted(tagged.json()["referenced_by_flows"]) == sorted([flow["id"], other["id"]])
    await http.put(f"/flows/{other['id']}/tags/kind", json="proxy")
    proxies = await http.get(f"/objects/{used['object_id']}", params={"flow_tag.kind": "proxy"})
    assert proxies.json()["referenced_by_flows"] == [other["id"]]
    paged = await http.get(f"/objects/{used['object_id']}", params={"limit": 1})
    assert len(paged.json()["referenced_by_flows"]) == 1 and "X-Paging-NextKey" in paged.headers


async def wait_done(http: httpx.AsyncClient, location: str) -> dict:
    for _ in range(600):
        request = (await http.get(location)).json()
        if request["status"] == "done":
            return request
        await asyncio.sleep(0.05)
    raise AssertionError(f"deletion request {location} did not finish: {request}")


async def test_large_deletes_answer_202_and_finish_through_a_deletion_request(http: httpx.AsyncClient) -> None:
    # The test stack deletes at most 10 segments per step (TAMS_DELETE_CHUNK_SEGMENTS).
    flow, objects = await flow_with_objects(http, 25)
    flow_id = flow["id"]
    await http.post(f"/flows/{flow_id}/segments", json=[
        {"object_id": o["object_id"], "timerange": f"[{i}:0_{i + 1}:0)"} for i, o in enumerate(objects)])
    accepted = await http.delete(f"/flows/{flow_id}/segments", params={"timerange": "[0:0_24:0)"})
    assert accepted.status_code == 202, accepted.text
    assert_valid(accepted.json(), "deletion-request.json")
    assert accepted.json()["delete_flow"] is False
    done = await wait_done(http, accepted.headers["Location"])
    assert done["timerange_remaining"] == "()"
    assert await ranges(http, flow_id) == ["[24:0_25:0)"]
    assert done["id"] in [r["id"] for r in (await http.get("/flow-delete-requests", params={"limit": "1000"})).json()]

    refill = (await http.post(f"/flows/{flow_id}/storage", json={"limit": 20})).json()["media_objects"]
    await http.post(f"/flows/{flow_id}/segments", json=[
        {"object_id": o["object_id"], "timerange": f"[{i}:0_{i + 1}:0)"} for i, o in enumerate(refill)])
    removal = await http.delete(f"/flows/{flow_id}")
    assert removal.status_code == 202 and removal.json()["delete_flow"] is True
    await wait_done(http, removal.headers["Location"])
    assert (await http.get(f"/flows/{flow_id}")).status_code == 404
    assert (await http.get(f"/sources/{flow['source_id']}")).status_code == 404
    assert (await http.get("/flow-delete-requests/3fa85f64-5717-4562-b3fc-2c963f66afa6")).status_code == 404
