"""`/objects/{objectId}`: which flows use an object, its own timeline, and where to get it."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from api.context import ctx
from api.errors import not_found
from api.paging import paging_headers, parse_limit
from api.segments import UrlRenderer

router = APIRouter()


@router.api_route("/objects/{object_id:path}", methods=["GET", "HEAD"])
async def get_object(request: Request, object_id: str) -> Response:
    c = ctx(request)
    params = request.query_params
    record = (await c.store.get_objects([object_id])).get(object_id)
    if record is None or not record.registered:  # the spec requires 404 for allocated, unregistered objects
        raise not_found(f"object {object_id!r} is not registered on any segment")
    limit = parse_limit(params.get("limit"))
    flows = await c.store.object_references(object_id, after_flow=params.get("page"), limit=limit + 1)
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
    extra = urls.render(object_id)
    if record.init_object_id:
        extra += b',"init_object":{"id":' + orjson.dumps(record.init_object_id) + urls.render(record.init_object_id)
        extra += b"}"
    headers = paging_headers(request.url, limit=limit, count=len(page), next_key=page[-1] if more else None,
                             reverse=False)
    headers = {k: v for k, v in headers.items() if k in ("Link", "X-Paging-Limit", "X-Paging-NextKey")}
    return Response(rendered[:-1] + extra + b"}", media_type="application/json", headers=headers)
