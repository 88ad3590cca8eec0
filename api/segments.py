"""`/flows/{flowId}/segments` and `/flows/{flowId}/storage`.

The segment listing is the hot read path: stored segment documents are JSON already, so a page is
spliced together as bytes (documents, object timerange, init object, signed URLs) with no model
objects per segment.
"""

from __future__ import annotations

import time

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter
from uuid_utils.compat import uuid7

from api.bodies import json_body, validate
from api.context import Context, ctx
from api.errors import bad_request, forbidden
from api.filters import timerange_param
from api.flows import check_uuid, deletion_response, load_flow
from api.paging import paging_headers, parse_bool, parse_limit
from api.urls import Instances, UrlRenderer
from schemas.commands import CommandKind
from schemas.resources import FlowSegmentPost, FlowStoragePost
from schemas.timing import TimeRange
from stores.errors import NotFound
from stores.metadata import SegmentQuery, StoredSegment

router = APIRouter()

_SEGMENT_POSTS = TypeAdapter(FlowSegmentPost | list[FlowSegmentPost])
_STORAGE_POST = TypeAdapter(FlowStoragePost)
MAX_ALLOCATION = 1000
DEFAULT_ALLOCATION = 10


def render_segment(segment: StoredSegment, urls: UrlRenderer, include_object_timerange: bool,
                   instances: Instances) -> bytes:
    extra = instances.render(urls, segment.object_id)
    if include_object_timerange and segment.object_timerange:
        extra += b',"object_timerange":"' + segment.object_timerange.encode() + b'"'
    if segment.init_object_id:
        extra += b',"init_object":{"object_id":' + orjson.dumps(segment.init_object_id)
        extra += instances.render(urls, segment.init_object_id) + b"}"
    return segment.doc[:-1] + extra + b"}" if extra else segment.doc


def _cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"page {raw!r} is not a paging key this service issued") from None


@router.api_route("/flows/{flow_id}/segments", methods=["GET", "HEAD"])
async def get_segments(request: Request, flow_id: str) -> Response:
    c = ctx(request)
    params = request.query_params
    check_uuid(flow_id, "flow id")
    timerange = timerange_param(params) or TimeRange.eternity()
    limit = parse_limit(params.get("limit"))
    reverse = parse_bool("reverse_order", params.get("reverse_order"))
    include_object_timerange = parse_bool("include_object_timerange", params.get("include_object_timerange"))
    urls = UrlRenderer(c, params)
    after = _cursor(params.get("page"))
    if timerange.is_empty:
        segments, more = [], False
    else:
        start, end = timerange.half_open()
        page = await c.store.list_segments(SegmentQuery(
            flow_id=flow_id, start_ns=start, end_ns=end, object_id=params.get("object_id"), reverse=reverse,
            limit=limit, after_start_ns=after))
        segments, more = page.segments, page.more
    ids = {s.object_id for s in segments} | {s.init_object_id for s in segments if s.init_object_id}
    instances = await Instances.lookup(c, urls, ids)
    body = b"[" + b",".join(render_segment(s, urls, include_object_timerange, instances) for s in segments) + b"]"
    headers = paging_headers(request.url, limit=limit, count=len(segments),
                             next_key=str(segments[-1].start_ns) if more else None, reverse=reverse)
    if segments:
        first = min(s.start_ns for s in (segments[0], segments[-1]))
        last = max(s.end_ns for s in (segments[0], segments[-1]))
        headers["X-Paging-Timerange"] = str(TimeRange.from_half_open(first, last))
    else:
        headers["X-Paging-Timerange"] = "()"
    return Response(body, media_type="application/json", headers=headers)


@router.delete("/flows/{flow_id}/segments")
async def delete_segments(request: Request, flow_id: str) -> Response:
    """Deletes only segments completely covered by `timerange` (and using `object_id`)."""
    flow = await load_flow(request, flow_id)
    timerange = timerange_param(request.query_params) or TimeRange.eternity()
    if flow.read_only:
        raise forbidden(f"flow {flow_id} is read-only")
    if timerange.is_empty:
        return Response(status_code=204)
    start, end = timerange.half_open()
    return deletion_response(await ctx(request).commands.execute(CommandKind.DELETE_SEGMENTS, flow_id, {
        "start_ns": start, "end_ns": end, "object_id": request.query_params.get("object_id")}))


@router.post("/flows/{flow_id}/segments")
async def post_segments(request: Request, flow_id: str) -> Response:
    c = ctx(request)
    flow = await load_flow(request, flow_id)
    raw = await json_body(request)
    posted = validate(_SEGMENT_POSTS, raw, "segment")
    posts = posted if isinstance(posted, list) else [posted]
    for post in posts:
        check_uncontrolled_labels(c, [u.label for u in post.get_urls or ()])
    if flow.read_only:
        raise forbidden(f"flow {flow_id} is read-only")
    if not flow.container:
        raise bad_request(f"flow {flow_id} has no container, so segments cannot be added to it")
    if not posts:
        return Response(status_code=201)
    body = {"segments": [p.model_dump(mode="json", exclude_none=True) for p in posts]}
    result = await c.commands.execute(CommandKind.ADD_SEGMENTS, flow_id, body)
    failed = result.get("failed_segments") or []
    if not failed:
        return Response(status_code=201)
    if len(failed) == len(posts):
        summary = "; ".join(f"{f['timerange']}: {f['error']['summary']}" for f in failed[:10])
        raise bad_request(f"no segment was added: {summary}", failed[0]["error"]["type"])
    return Response(orjson.dumps({"failed_segments": failed}), status_code=200, media_type="application/json")


def check_uncontrolled_labels(c: Context, labels: list[str]) -> None:
    """Client-registered URLs must not use a storage backend's label, nor repeat a label (400)."""
    taken = sorted(c.backends.labels.intersection(labels))
    if taken:
        raise bad_request(f"the label {taken[0]!r} belongs to a storage backend of this service")
    if len(set(labels)) != len(labels):
        raise bad_request(f"get_urls labels must be distinct, got {labels}")


@router.post("/flows/{flow_id}/storage")
async def post_storage(request: Request, flow_id: str) -> Response:
    c = ctx(request)
    flow = await load_flow(request, flow_id)
    raw = await json_body(request) if (await request.body()).strip() else {}
    post = validate(_STORAGE_POST, raw, "storage request")
    if flow.read_only:
        raise forbidden(f"flow {flow_id} is read-only")
    if not flow.container:
        raise bad_request(f"flow {flow_id} has no container, so it cannot have media objects")
    if post.limit is not None and post.object_ids is not None:
        raise bad_request("give either limit or object_ids, not both")
    try:
        backend = c.backends.default if post.storage_id is None else c.backends.get(str(post.storage_id))
    except NotFound as exc:
        raise bad_request(str(exc)) from None
    if post.presigned is False:
        raise bad_request("upload URLs are always presigned here")
    if post.object_ids is not None:
        ids = post.object_ids
        if not ids or len(ids) > MAX_ALLOCATION or len(set(ids)) != len(ids) or not all(ids):
            raise bad_request(f"object_ids must be 1 to {MAX_ALLOCATION} distinct non-empty strings")
    else:
        count = post.limit if post.limit is not None else DEFAULT_ALLOCATION
        if not 1 <= count <= MAX_ALLOCATION:
            raise bad_request(f"limit must be between 1 and {MAX_ALLOCATION}")
        # Time-ordered ids (UUIDv7): objects allocated together sit together in every index keyed by object
        # id, so registering a batch of them rewrites a few B-tree pages instead of one page per object.
        ids = [str(uuid7()) for _ in range(count)]
    content_type = post.content_type or flow.container
    await c.commands.execute(CommandKind.ALLOCATE_STORAGE, flow_id, {
        "object_ids": ids, "storage_id": backend.id, "content_type": post.content_type})
    now, lifetime = int(time.time()), c.settings.presigned_url_timeout_s
    media_objects = [{
        "object_id": object_id,
        "put_url": {"url": backend.urls.sign("PUT", object_id, now, lifetime, content_type),
                    "content-type": content_type},
        "presigned": True,
    } for object_id in ids]
    return Response(orjson.dumps({"media_objects": media_objects}), status_code=201, media_type="application/json")
