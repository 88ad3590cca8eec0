"""`/objects/{objectId}`: which flows use an object, its own timeline, and where to get it."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from api.bodies import json_body
from api.context import ctx
from api.errors import bad_request, not_found
from api.filters import tag_filter, uuid_param
from api.paging import paging_headers, parse_limit
from api.segments import check_uncontrolled_labels
from api.urls import Instances, UrlRenderer
from schemas.commands import CommandKind
from stores.errors import NotFound
from stores.metadata import ObjectRecord

router = APIRouter()


async def registered_object(request: Request, object_id: str) -> ObjectRecord:
    """The object, if a segment uses it: 404 for allocations no segment uses yet, as the spec requires.

    Init objects are never registered (registration is for media objects); segments naming them make them real."""
    store = ctx(request).store
    record = (await store.get_objects([object_id])).get(object_id)
    if record is None or not (record.registered or await store.object_references(object_id, after_flow=None, limit=1)):
        raise not_found(f"object {object_id!r} is not registered on any segment")
    return record


@router.post("/objects/{object_id:path}/instances")
async def add_instance(request: Request, object_id: str) -> Response:
    """A controlled copy on another backend (`storage_id`: the agent copies the bytes, then lists the copy),
    or an uncontrolled instance (`url` and `label`)."""
    c = ctx(request)
    record = await registered_object(request, object_id)
    raw = await json_body(request)
    if not isinstance(raw, dict):
        raise bad_request("an instance must be a JSON object")
    if "storage_id" in raw:
        storage_id = raw["storage_id"]
        if set(raw) != {"storage_id"} or not isinstance(storage_id, str):
            raise bad_request("a controlled instance is requested with only a storage_id (a string)")
        try:
            c.backends.get(storage_id)
        except NotFound as exc:
            raise bad_request(str(exc)) from None
        if storage_id in record.storage_ids:
            raise bad_request(f"object {object_id!r} already has a controlled instance on {storage_id}")
        await c.commands.execute(CommandKind.ADD_INSTANCE, owner(record),
                                 {"object_id": object_id, "storage_id": storage_id})
        return Response(status_code=201)
    url, label = raw.get("url"), raw.get("label")
    if not isinstance(url, str) or not isinstance(label, str) or not url or not label:
        raise bad_request("an uncontrolled instance needs a non-empty url and label")
    check_uncontrolled_labels(c, [label])
    await c.commands.execute(CommandKind.ADD_INSTANCE, owner(record),
                             {"object_id": object_id, "label": label, "url": url})
    return Response(status_code=201)


@router.delete("/objects/{object_id:path}/instances")
async def remove_instance(request: Request, object_id: str) -> Response:
    c = ctx(request)
    record = await registered_object(request, object_id)
    params = request.query_params
    if ("storage_id" in params) == ("label" in params):
        raise bad_request("give exactly one of storage_id or label")
    if "storage_id" in params:
        storage_id = params["storage_id"]
        if storage_id not in record.storage_ids:
            raise not_found(f"object {object_id!r} has no instance on storage {storage_id!r}")
        if record.storage_ids == (storage_id,):
            raise bad_request(f"storage {storage_id} holds the object's only controlled instance, which is kept; "
                              "delete the segments that use the object to delete it")
        await c.commands.execute(CommandKind.REMOVE_INSTANCE, owner(record),
                                 {"object_id": object_id, "storage_id": storage_id})
        return Response(status_code=204)
    await c.commands.execute(CommandKind.REMOVE_INSTANCE, owner(record),
                             {"object_id": object_id, "label": params["label"]})
    return Response(status_code=204)


def owner(record: ObjectRecord) -> str:
    """Instance writes go to the agent of the flow that first used the object, like its other writes."""
    return record.first_referenced_by_flow or record.allocated_by_flow or ""


@router.api_route("/objects/{object_id:path}", methods=["GET", "HEAD"])
async def get_object(request: Request, object_id: str) -> Response:
    c = ctx(request)
    params = request.query_params
    record = await registered_object(request, object_id)
    limit = parse_limit(params.get("limit"))
    flows = await c.store.object_references(object_id, after_flow=uuid_param(params, "page"), limit=limit + 1,
                                            flow_tags=tag_filter(params, "flow_tag"))
    page, more = flows[:limit], len(flows) > limit
    body: dict[str, object] = {"id": object_id, "referenced_by_flows": page}
    if record.first_referenced_by_flow:
        body["first_referenced_by_flow"] = record.first_referenced_by_flow
    if record.timerange:
        body["timerange"] = record.timerange
    if record.key_frame_count is not None:
        body["key_frame_count"] = record.key_frame_count
    urls = UrlRenderer(c, params)
    rendered = orjson.dumps(body)
    instances = await Instances.lookup(c, urls, [object_id, *filter(None, [record.init_object_id])])
    extra = instances.render(urls, object_id)
    if record.init_object_id:
        extra += b',"init_object":{"id":' + orjson.dumps(record.init_object_id)
        extra += instances.render(urls, record.init_object_id) + b"}"
    headers = paging_headers(request.url, limit=limit, count=len(page), next_key=page[-1] if more else None,
                             reverse=False)
    headers = {k: v for k, v in headers.items() if k in ("Link", "X-Paging-Limit", "X-Paging-NextKey")}
    return Response(rendered[:-1] + extra + b"}", media_type="application/json", headers=headers)
