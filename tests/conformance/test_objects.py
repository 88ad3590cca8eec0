"""`/objects/{objectId}` and `/objects/{objectId}/instances` (digest §1.10, §3.3, §4; checklist E.32-E.37).

Reading chosen (README): a controlled copy needs a second storage backend; the test stack has one,
so `POST /objects/{id}/instances` with a `storage_id` answers 400 here, and only uncontrolled
instances (`url` + `label`) are created.
"""

from __future__ import annotations

import uuid

import httpx

from tests.conformance.helpers import (
    add_segments,
    allocate,
    example,
    new_flow,
    same_as_get,
    uid,
    upload,
)

INIT_ESSENCE = {"frame_width": 1920, "frame_height": 1080, "frame_rate": {"numerator": 25}, "init_segments": True}


async def registered(tams: httpx.AsyncClient, timerange: str = "[0:0_4:0)", **fields: object) -> tuple[dict, str]:
    flow = await new_flow(tams)
    (object_id,) = await add_segments(tams, flow["id"], [timerange], **fields)
    return flow, object_id


async def get_object(tams: httpx.AsyncClient, object_id: str, **params: str) -> dict:
    response = await tams.get(f"/objects/{object_id}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- GET /objects/{objectId} -----------------------------------------------------------------


async def test_get_objects_id_200_lists_referencing_flows_timerange_and_key_frames(tams: httpx.AsyncClient) -> None:
    flow, object_id = await registered(tams, "[10:0_14:0)", ts_offset="10:0", key_frame_count=2)
    reuser = await new_flow(tams)
    assert (await tams.post(f"/flows/{reuser['id']}/segments", json={
        "object_id": object_id, "timerange": "[50:0_51:0)", "ts_offset": "50:0"})).status_code == 201
    body = await get_object(tams, object_id)
    assert body["id"] == object_id
    assert sorted(body["referenced_by_flows"]) == sorted([flow["id"], reuser["id"]])
    assert body["first_referenced_by_flow"] == flow["id"]
    assert body["timerange"] == "[0:0_4:0)" and body["key_frame_count"] == 2
    assert body["get_urls"][0]["url"]


async def test_get_objects_id_200_init_object_has_no_timerange_and_is_referenced_through_media(
        tams: httpx.AsyncClient) -> None:
    """An init object MUST NOT have a timerange; its flows are those of the media objects using it. A media
    object names its init object as `init_object.id` (not `object_id`, as segments do)."""
    flow = await new_flow(tams, essence_parameters=INIT_ESSENCE)
    init, media = await allocate(tams, flow["id"], 2)
    assert (await tams.post(f"/flows/{flow['id']}/segments", json={
        "object_id": media, "timerange": "[0:0_2:0)", "init_object_id": init})).status_code == 201
    init_body = await get_object(tams, init)
    assert init_body["referenced_by_flows"] == [flow["id"]] and "timerange" not in init_body
    media_body = await get_object(tams, media)
    assert media_body["init_object"]["id"] == init and media_body["init_object"]["get_urls"]


async def test_get_objects_id_200_pages_referenced_by_flows(tams: httpx.AsyncClient) -> None:
    """`limit`/`page` apply to `referenced_by_flows`, with `Link` and `X-Paging-Limit`/`-NextKey` (checked by
    the hook on every page)."""
    first, object_id = await registered(tams, "[0:0_10:0)")
    referencing = {first["id"]}
    for i in range(2):
        flow = await new_flow(tams)
        assert (await tams.post(f"/flows/{flow['id']}/segments", json={
            "object_id": object_id, "timerange": f"[{i}:0_{i + 1}:0)"})).status_code == 201
        referencing.add(flow["id"])
    seen: list[str] = []
    url: str | None = f"/objects/{object_id}?limit=1"
    while url:
        response = await tams.get(url)
        assert response.headers["X-Paging-Limit"] == "1"
        seen += response.json()["referenced_by_flows"]
        url = response.links.get("next", {}).get("url")
    assert sorted(seen) == sorted(referencing)


async def test_get_objects_id_200_flow_tag_filters_apply_to_referenced_by_flows(tams: httpx.AsyncClient) -> None:
    mark = uuid.uuid4().hex
    first, object_id = await registered(tams, "[0:0_10:0)")
    proxy = await new_flow(tams, tags={"kind": ["proxy", mark]})
    await tams.post(f"/flows/{proxy['id']}/segments", json={"object_id": object_id, "timerange": "[0:0_1:0)"})
    assert (await get_object(tams, object_id, **{"flow_tag.kind": mark}))["referenced_by_flows"] == [proxy["id"]]
    assert (await get_object(tams, object_id, **{"flow_tag_exists.kind": "false"}))["referenced_by_flows"] == \
        [first["id"]]


async def test_get_objects_id_200_get_urls_filters_and_verbose_storage(tams: httpx.AsyncClient) -> None:
    _, object_id = await registered(tams)
    backend = (await tams.get("/service/storage-backends")).json()[0]
    assert "get_urls" not in await get_object(tams, object_id, accept_get_urls="")
    assert "get_urls" not in await get_object(tams, object_id, presigned="false")
    (entry,) = (await get_object(tams, object_id, verbose_storage="true"))["get_urls"]
    assert entry["storage_id"] == backend["id"] and entry["label"] == backend["label"]
    assert entry["store_type"] == "http_object_store"


async def test_get_objects_id_200_object_id_with_slash_is_url_encoded(tams: httpx.AsyncClient) -> None:
    """Object ids are arbitrary strings and may contain `/`; they are URL-encoded in the path."""
    flow = await new_flow(tams)
    object_id = f"folder/{uid()}"
    assert (await tams.post(f"/flows/{flow['id']}/storage", json={"object_ids": [object_id]})).status_code == 201
    await tams.post(f"/flows/{flow['id']}/segments", json={"object_id": object_id, "timerange": "[0:0_1:0)"})
    assert (await get_object(tams, object_id.replace("/", "%2F")))["id"] == object_id


async def test_get_objects_id_404_for_allocated_unregistered_object(tams: httpx.AsyncClient) -> None:
    """404 MUST be returned for an id allocated by `/storage` but not yet registered on a segment."""
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    assert (await tams.get(f"/objects/{object_id}")).status_code == 404


async def test_get_objects_id_404_unknown_object(tams: httpx.AsyncClient) -> None:
    assert (await tams.get(f"/objects/{uid()}")).status_code == 404


async def test_get_objects_id_404_after_the_last_reference_in_any_flow_is_deleted(tams: httpx.AsyncClient) -> None:
    """Checklist E.33: an object (record and controlled bytes) goes only when no segment in any flow uses it."""
    first = await new_flow(tams)
    (object_id,) = await upload(tams, first["id"])
    await tams.post(f"/flows/{first['id']}/segments", json={"object_id": object_id, "timerange": "[0:0_10:0)"})
    second = await new_flow(tams)
    await tams.post(f"/flows/{second['id']}/segments", json={"object_id": object_id, "timerange": "[0:0_1:0)"})
    url = (await get_object(tams, object_id))["get_urls"][0]["url"]
    await tams.delete(f"/flows/{first['id']}/segments")
    assert (await get_object(tams, object_id))["referenced_by_flows"] == [second["id"]]
    assert (await tams.get(url)).status_code == 200
    await tams.delete(f"/flows/{second['id']}/segments")
    assert (await tams.get(f"/objects/{object_id}")).status_code == 404
    assert (await tams.get(url)).status_code == 404


async def test_get_objects_id_400_invalid_query(tams: httpx.AsyncClient) -> None:
    _, object_id = await registered(tams)
    for params in ({"verbose_storage": "maybe"}, {"flow_tag_exists.kind": "maybe"},
                   {"storage_backend_tag_exists.x": "maybe"}):
        assert (await tams.get(f"/objects/{object_id}", params=params)).status_code == 400, params


async def test_head_objects_id_200_same_headers_as_get_without_body(tams: httpx.AsyncClient) -> None:
    _, object_id = await registered(tams)
    head = await same_as_get(tams, f"/objects/{object_id}")
    assert head.status_code == 200 and "X-Paging-Limit" in head.headers


async def test_head_objects_id_400_invalid_query(tams: httpx.AsyncClient) -> None:
    _, object_id = await registered(tams)
    assert (await same_as_get(tams, f"/objects/{object_id}", verbose_storage="maybe")).status_code == 400


async def test_head_objects_id_404_for_allocated_unregistered_object(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    assert (await same_as_get(tams, f"/objects/{object_id}")).status_code == 404


# -- POST /objects/{objectId}/instances ------------------------------------------------------


async def test_post_objects_id_instances_201_official_uncontrolled_example(tams: httpx.AsyncClient) -> None:
    """`objects-instances-uncontrolled-post.json`: the URL is listed (uncontrolled) on the object and on every
    segment using it."""
    flow, object_id = await registered(tams)
    body = example("objects-instances-uncontrolled-post.json")
    response = await tams.post(f"/objects/{object_id}/instances", json=body)
    assert response.status_code == 201, response.text
    urls = (await get_object(tams, object_id, verbose_storage="true"))["get_urls"]
    assert {"url": body["url"], "label": body["label"], "presigned": False, "controlled": False} in urls
    (segment,) = (await tams.get(f"/flows/{flow['id']}/segments", params={"accept_get_urls": body["label"]})).json()
    assert [u["url"] for u in segment["get_urls"]] == [body["url"]]


async def test_post_objects_id_instances_201_does_not_cascade_to_the_init_object(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams, essence_parameters=INIT_ESSENCE)
    init, media = await allocate(tams, flow["id"], 2)
    await tams.post(f"/flows/{flow['id']}/segments", json={"object_id": media, "timerange": "[0:0_1:0)",
                                                            "init_object_id": init})
    before = [u["label"] for u in (await get_object(tams, init))["get_urls"]]
    body = {"url": "https://mirror.example/media", "label": "mirror"}
    assert (await tams.post(f"/objects/{media}/instances", json=body)).status_code == 201
    assert [u["label"] for u in (await get_object(tams, init))["get_urls"]] == before


async def test_post_objects_id_instances_400_official_controlled_example_and_bad_bodies(
        tams: httpx.AsyncClient) -> None:
    """`objects-instances-controlled-post.json` names a backend this service does not have (400); the one
    backend already holds the object (400, see the module docstring); an uncontrolled instance needs `url` and
    `label`, and its label must not be a backend's."""
    _, object_id = await registered(tams)
    backend = (await tams.get("/service/storage-backends")).json()[0]
    for body in (example("objects-instances-controlled-post.json"), {"storage_id": backend["id"]},
                 {"url": "https://x.example/y"}, {"label": "only-a-label"}, {"url": "https://x.example/y",
                                                                             "label": backend["label"]}, ["x"]):
        assert (await tams.post(f"/objects/{object_id}/instances", json=body)).status_code == 400, body


async def test_post_objects_id_instances_404_for_allocated_unregistered_object(tams: httpx.AsyncClient) -> None:
    flow = await new_flow(tams)
    (object_id,) = await allocate(tams, flow["id"])
    body = example("objects-instances-uncontrolled-post.json")
    assert (await tams.post(f"/objects/{object_id}/instances", json=body)).status_code == 404
    assert (await tams.post(f"/objects/{uid()}/instances", json=body)).status_code == 404


# -- DELETE /objects/{objectId}/instances ----------------------------------------------------


async def test_delete_objects_id_instances_204_removes_an_uncontrolled_instance_by_label(
        tams: httpx.AsyncClient) -> None:
    _, object_id = await registered(tams)
    await tams.post(f"/objects/{object_id}/instances", json={"url": "https://archive.example/x", "label": "archive"})
    response = await tams.delete(f"/objects/{object_id}/instances", params={"label": "archive"})
    assert response.status_code == 204 and response.content == b""
    assert "archive" not in [u["label"] for u in (await get_object(tams, object_id))["get_urls"]]


async def test_delete_objects_id_instances_400_needs_exactly_one_of_storage_id_or_label(
        tams: httpx.AsyncClient) -> None:
    _, object_id = await registered(tams)
    backend = (await tams.get("/service/storage-backends")).json()[0]
    assert (await tams.delete(f"/objects/{object_id}/instances")).status_code == 400
    both = {"storage_id": backend["id"], "label": "x"}
    assert (await tams.delete(f"/objects/{object_id}/instances", params=both)).status_code == 400


async def test_delete_objects_id_instances_400_refuses_the_last_controlled_instance(tams: httpx.AsyncClient) -> None:
    """The service SHOULD refuse to delete the last instance and MAY refuse the last controlled one."""
    _, object_id = await registered(tams)
    backend = (await tams.get("/service/storage-backends")).json()[0]
    await tams.post(f"/objects/{object_id}/instances", json={"url": "https://archive.example/x", "label": "archive"})
    response = await tams.delete(f"/objects/{object_id}/instances", params={"storage_id": backend["id"]})
    assert response.status_code == 400
    assert backend["label"] in [u["label"] for u in (await get_object(tams, object_id))["get_urls"]]


async def test_delete_objects_id_instances_404_unknown_instance_or_unregistered_object(
        tams: httpx.AsyncClient) -> None:
    flow, object_id = await registered(tams)
    assert (await tams.delete(f"/objects/{object_id}/instances", params={"label": "nowhere"})).status_code == 404
    params = {"storage_id": str(uuid.uuid4())}
    assert (await tams.delete(f"/objects/{object_id}/instances", params=params)).status_code == 404
    (allocated,) = await allocate(tams, flow["id"])
    assert (await tams.delete(f"/objects/{allocated}/instances", params={"label": "x"})).status_code == 404
