"""Object instances: uncontrolled URLs registered by clients, listed beside the controlled one."""

from __future__ import annotations

import httpx

from tests.conftest import video_flow
from tests.test_resources import assert_valid


async def registered_object(http: httpx.AsyncClient, **segment: object) -> tuple[str, str]:
    flow = video_flow()
    await http.put(f"/flows/{flow['id']}", json=flow)
    (obj,) = (await http.post(f"/flows/{flow['id']}/storage", json={"limit": 1})).json()["media_objects"]
    posted = await http.post(f"/flows/{flow['id']}/segments",
                             json={"object_id": obj["object_id"], "timerange": "[0:0_1:0)", **segment})
    assert posted.status_code == 201, posted.text
    return flow["id"], obj["object_id"]


async def test_segment_get_urls_add_uncontrolled_instances_that_filters_honour(http: httpx.AsyncClient) -> None:
    mirror = {"url": "https://mirror.example/object.ts", "label": "mirror"}
    flow_id, object_id = await registered_object(http, get_urls=[mirror])

    async def urls(**params: str) -> list[dict]:
        (segment,) = (await http.get(f"/flows/{flow_id}/segments", params=params)).json()
        assert_valid(segment, "flow-segment.json")
        return segment.get("get_urls", [])

    everything = await urls()
    assert [u["label"] for u in everything] == ["local", "mirror"]
    assert everything[1] == {**mirror, "presigned": False}  # without verbose_storage: url, presigned, label
    verbose = await urls(verbose_storage="true")
    assert verbose[1] == {**mirror, "presigned": False, "controlled": False}
    assert [u["label"] for u in await urls(accept_get_urls="mirror")] == ["mirror"]
    assert [u["label"] for u in await urls(presigned="true")] == ["local"]
    assert [u["label"] for u in await urls(presigned="false")] == ["mirror"]
    backend = (await http.get("/service/storage-backends")).json()[0]["id"]
    assert [u["label"] for u in await urls(accept_storage_ids=backend)] == ["local"]
    assert await urls(accept_get_urls="") == []


async def test_uncontrolled_labels_must_not_clash(http: httpx.AsyncClient) -> None:
    flow = video_flow()
    await http.put(f"/flows/{flow['id']}", json=flow)
    (obj,) = (await http.post(f"/flows/{flow['id']}/storage", json={"limit": 1})).json()["media_objects"]
    for get_urls in ([{"url": "https://a/x", "label": "local"}],
                     [{"url": "https://a/x", "label": "m"}, {"url": "https://b/x", "label": "m"}]):
        refused = await http.post(f"/flows/{flow['id']}/segments", json={
            "object_id": obj["object_id"], "timerange": "[0:0_1:0)", "get_urls": get_urls})
        assert refused.status_code == 400, get_urls


async def test_instances_can_be_added_and_removed_but_not_the_last_one(http: httpx.AsyncClient) -> None:
    _, object_id = await registered_object(http)
    base = f"/objects/{object_id}/instances"
    assert (await http.post(base, json={"url": "https://archive.example/x", "label": "archive"})).status_code == 201
    body = (await http.get(f"/objects/{object_id}")).json()
    assert [u["label"] for u in body["get_urls"]] == ["local", "archive"]
    assert_valid(body, "object.json")
    assert (await http.delete(base, params={"label": "archive"})).status_code == 204
    assert (await http.delete(base, params={"label": "archive"})).status_code == 404
    backend = (await http.get("/service/storage-backends")).json()[0]["id"]
    assert (await http.delete(base, params={"storage_id": backend})).status_code == 400  # the last instance
    assert (await http.delete(base, params={"storage_id": backend, "label": "x"})).status_code == 400
    assert (await http.post(base, json={"storage_id": backend})).status_code == 400
    assert (await http.post(base, json={"url": "https://x", "label": "local"})).status_code == 400
    assert (await http.post("/objects/never-registered/instances",
                            json={"url": "https://x", "label": "y"})).status_code == 404


async def test_storage_backend_tag_filters_apply_to_get_urls(http: httpx.AsyncClient) -> None:
    flow_id, _ = await registered_object(http, get_urls=[{"url": "https://m.example/x", "label": "mirror"}])

    async def labels(**params: str) -> list[str]:
        (segment,) = (await http.get(f"/flows/{flow_id}/segments", params=params)).json()
        return [u["label"] for u in segment.get("get_urls", [])]

    assert await labels(**{"storage_backend_tag.auth_classes": "news"}) == []  # the backend has no such tag
    assert await labels(**{"storage_backend_tag_exists.auth_classes": "false"}) == ["local"]
    assert await labels(**{"storage_backend_tag_exists.auth_classes": "true"}) == []
