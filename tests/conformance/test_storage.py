"""`POST /flows/{flowId}/storage` (digest §3.2; checklist E.30, E.31)."""

from __future__ import annotations

import httpx

from tests.conformance.helpers import (
    MALFORMED_ID,
    UNKNOWN_ID,
    example,
    multi_flow,
    new_flow,
    put_flow,
    uid,
)


async def storage(tams: httpx.AsyncClient, flow_id: str, body: object = None) -> httpx.Response:
    return await tams.post(f"/flows/{flow_id}/storage", json=body)


async def test_post_flows_id_storage_201_official_limit_example_allocates_that_many(tams: httpx.AsyncClient) -> None:
    """`flow-storage-post.json` (`limit: 50`): 50 distinct ids, each with a presigned `put_url` whose
    `content-type` is the flow's container (the hook validates the body as flow-storage)."""
    flow = await new_flow(tams)
    response = await storage(tams, flow["id"], example("flow-storage-post.json"))
    assert response.status_code == 201, response.text
    objects = response.json()["media_objects"]
    assert len(objects) == 50 and len({o["object_id"] for o in objects}) == 50
    for media_object in objects:
        assert media_object["put_url"]["url"].startswith("http")
        assert media_object["put_url"]["content-type"] == flow["container"]


async def test_post_flows_id_storage_201_official_object_ids_example_uses_those_ids(tams: httpx.AsyncClient) -> None:
    """`flow-storage-post-object_ids.json` verbatim (ADR-0034: client-chosen ids, e.g. for replication); the
    ids are then taken, so the same request on any flow is a 400."""
    flow = await new_flow(tams)
    body = example("flow-storage-post-object_ids.json")
    response = await storage(tams, flow["id"], body)
    assert response.status_code == 201, response.text
    assert [o["object_id"] for o in response.json()["media_objects"]] == body["object_ids"]
    other = await new_flow(tams)
    assert (await storage(tams, other["id"], body)).status_code == 400


async def test_post_flows_id_storage_201_without_body_uses_a_default_limit(tams: httpx.AsyncClient) -> None:
    """The request body is not required: the server picks the number of objects."""
    flow = await new_flow(tams)
    response = await tams.post(f"/flows/{flow['id']}/storage")
    assert response.status_code == 201 and len(response.json()["media_objects"]) >= 1


async def test_post_flows_id_storage_201_content_type_for_init_objects(tams: httpx.AsyncClient) -> None:
    """`content_type` (for init segments whose type differs from the container) is the `put_url` content-type."""
    flow = await new_flow(tams)
    response = await storage(tams, flow["id"], {"limit": 1, "content_type": "video/mp4"})
    assert response.status_code == 201
    assert response.json()["media_objects"][0]["put_url"]["content-type"] == "video/mp4"


async def test_post_flows_id_storage_201_on_a_chosen_storage_backend(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    backend = (await tams.get("/service/storage-backends")).json()[0]
    response = await storage(tams, flow["id"], {"limit": 2, "storage_id": backend["id"]})
    assert response.status_code == 201 and len(response.json()["media_objects"]) == 2


async def test_post_flows_id_storage_201_put_url_accepts_the_upload(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    (media_object,) = (await storage(tams, flow["id"], {"limit": 1})).json()["media_objects"]
    put_url = media_object["put_url"]
    uploaded = await tams.put(put_url["url"], content=b"media bytes",
                              headers={"content-type": put_url["content-type"], **put_url.get("headers", {})})
    assert uploaded.status_code in (200, 201, 204), uploaded.text


async def test_post_flows_id_storage_400_invalid_request(tams: httpx.AsyncClient) -> None:
    """Both `limit` and `object_ids`; an unknown `storage_id`; unusable limits; not a JSON object."""
    flow = await new_flow(tams)
    for body in ({"limit": 1, "object_ids": [uid()]}, {"storage_id": UNKNOWN_ID}, {"limit": 0}, {"limit": -1},
                 {"limit": "two"}, {"object_ids": []}, {"object_ids": "abc"}, ["limit"]):
        assert (await storage(tams, flow["id"], body)).status_code == 400, body


async def test_post_flows_id_storage_400_object_id_already_exists(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    taken = f"taken-{uid()}"
    assert (await storage(tams, flow["id"], {"object_ids": [taken]})).status_code == 201
    assert (await storage(tams, flow["id"], {"object_ids": [f"new-{uid()}", taken]})).status_code == 400


async def test_post_flows_id_storage_400_flow_without_container(tams: httpx.AsyncClient) -> None:
    multi = await put_flow(tams, multi_flow())
    assert (await storage(tams, multi["id"], {"limit": 1})).status_code == 400


async def test_post_flows_id_storage_403_read_only(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams, read_only=True)
    assert (await storage(tams, flow["id"], {"limit": 1})).status_code == 403


async def test_post_flows_id_storage_404_unknown_flow(tams: httpx.AsyncClient) -> None:
    assert (await storage(tams, UNKNOWN_ID, {"limit": 1})).status_code == 404
    assert (await storage(tams, MALFORMED_ID, {"limit": 1})).status_code == 404
