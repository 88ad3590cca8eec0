"""`/flows` and `/flows/{flowId}`: reads from the metadata store, writes as commands to the owning agent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.bodies import UUID_RE, body_for_id, validate
from api.context import ctx
from api.errors import forbidden, not_found
from api.fields import FLOW_FIELDS, add_field_routes
from api.filters import choice_param, collected_by_ids, optional_int, tag_filter, timerange_param, uuid_param
from api.paging import encode_page, listing, paging_headers, parse_bool, parse_limit
from api.responses import Json
from schemas.commands import CommandKind
from schemas.events import rfc3339_from_ns
from schemas.resources import ContentFormat, FlowAdapter, FlowPutAdapter, FlowStatus, ProfileFlowPut
from schemas.timing import TimeRange
from stores.errors import NotFound
from stores.metadata import FlowQuery, FlowRecord, SegmentQuery, sort_key

router = APIRouter()

SERVER_MANAGED = ("created", "metadata_updated", "segments_updated", "collected_by", "timerange")


def check_uuid(value: str, what: str) -> str:
    """A malformed id names nothing: 404, which the spec documents for every operation on an id."""
    if not UUID_RE.match(value):
        raise not_found(f"{what} {value!r} is not a valid UUID, so nothing has it")
    return value


async def load_flow(request: Request, flow_id: str) -> FlowRecord:
    check_uuid(flow_id, "flow id")
    try:
        return await ctx(request).store.get_flow(flow_id)
    except NotFound:
        raise not_found(f"flow {flow_id} does not exist") from None


def flow_body(record: FlowRecord, *, include_timerange: bool, covered: TimeRange | None = None) -> dict[str, Any]:
    """The flow as TAMS clients read it: the stored document plus the server-managed fields.

    `covered`, when given, is the flow's timerange already limited to a query (`covered_timerange`)."""
    body = dict(record.doc)
    body["created"] = rfc3339_from_ns(record.created_ns)
    body["metadata_updated"] = rfc3339_from_ns(record.metadata_updated_ns)
    if record.segments_updated_ns is not None:
        body["segments_updated"] = rfc3339_from_ns(record.segments_updated_ns)
    if record.collected_by:
        body["collected_by"] = list(record.collected_by)
    if include_timerange:
        extent = TimeRange.never() if record.extent is None else TimeRange.from_half_open(*record.extent)
        body["timerange"] = str(covered if covered is not None else extent)
    return body


async def covered_timerange(request: Request, record: FlowRecord, query: TimeRange) -> TimeRange:
    """The flow's timerange limited to where its segments overlap `query`: the span from the first to the
    last segment overlapping it, clipped to the query (`()` when none does). Two one-row index reads."""
    if record.extent is None or query.is_empty:
        return TimeRange.never()
    start, end = query.half_open()
    store = ctx(request).store
    first = await store.list_segments(SegmentQuery(record.id, start, end, limit=1))
    last = await store.list_segments(SegmentQuery(record.id, start, end, limit=1, reverse=True))
    if not first.segments:
        return TimeRange.never()
    # Segments of a flow never overlap, so the one that starts last also ends last.
    hull = TimeRange.from_half_open(first.segments[0].start_ns, last.segments[0].end_ns)
    return hull.intersect(query)


@router.api_route("/flows", methods=["GET", "HEAD"])
async def list_flows(request: Request) -> Json:
    params = request.query_params
    limit = parse_limit(params.get("limit"))
    order = listing(params, ("created", "metadata_updated", "label"))
    overlapping, empty_only = None, False
    timerange = timerange_param(params)
    if timerange is not None:
        empty_only = timerange.is_empty
        overlapping = None if timerange.is_empty or timerange.is_eternity else timerange.half_open()
    init_segments = params.get("init_segments")
    records = await ctx(request).store.list_flows(FlowQuery(
        limit=limit + 1, listing=order, source_id=uuid_param(params, "source_id"),
        format=choice_param(params, "format", ContentFormat), codec=params.get("codec"), label=params.get("label"),
        status=choice_param(params, "status", FlowStatus), frame_width=optional_int(params, "frame_width"),
        frame_height=optional_int(params, "frame_height"),
        init_segments=None if init_segments is None else parse_bool("init_segments", init_segments),
        profile_id=uuid_param(params, "profile_id"), collected_by_ids=collected_by_ids(params),
        tags=tag_filter(params), overlapping=overlapping, empty_only=empty_only))
    page, more = records[:limit], len(records) > limit
    next_key = None
    if more:
        last = page[-1]
        next_key = encode_page(sort_key(order.sort_by, last.id, last.created_ns, last.metadata_updated_ns,
                                        last.doc.get("label")), order.sort_by)
    headers = paging_headers(request.url, limit=limit, count=len(page), next_key=next_key, reverse=order.reverse)
    return Json([flow_body(r, include_timerange=False) for r in page], headers=headers)


@router.api_route("/flows/{flow_id}", methods=["GET", "HEAD"])
async def get_flow(request: Request, flow_id: str) -> Json:
    params = request.query_params
    include_timerange = parse_bool("include_timerange", params.get("include_timerange"))
    query = timerange_param(params)
    record = await load_flow(request, flow_id)
    covered = await covered_timerange(request, record, query) if include_timerange and query is not None else None
    return Json(flow_body(record, include_timerange=include_timerange, covered=covered))


@router.put("/flows/{flow_id}")
async def put_flow(request: Request, flow_id: str) -> Response:
    check_uuid(flow_id, "flow id")
    raw = {k: v for k, v in (await body_for_id(request, flow_id, "flow")).items() if k not in SERVER_MANAGED}
    put = validate(FlowPutAdapter, raw, "flow")
    if isinstance(put, ProfileFlowPut):
        from api.profiles import expand_profile  # api.profiles builds on this module

        raw = await expand_profile(request, put.model_dump(mode="json", exclude_none=True))
    elif raw.get("profile_id") == "":
        del raw["profile_id"]  # "" breaks the link to a profile (flow PUT description)
    flow = validate(FlowAdapter, raw, "flow")
    doc = FlowAdapter.dump_python(flow, mode="json", exclude_none=True)
    c = ctx(request)
    try:
        current = await c.store.get_flow(flow_id)
        if current.read_only and doc.get("read_only", True):
            raise forbidden(f"flow {flow_id} is read-only")
    except NotFound:
        pass
    result = await c.commands.execute(CommandKind.PUT_FLOW, flow_id, doc)
    if not result.get("created"):
        return Response(status_code=204)
    record = await c.store.get_flow(flow_id)
    return Json(flow_body(record, include_timerange=False), status_code=201)


@router.delete("/flows/{flow_id}")
async def delete_flow(request: Request, flow_id: str) -> Response:
    record = await load_flow(request, flow_id)
    if record.read_only:
        raise forbidden(f"flow {flow_id} is read-only")
    return deletion_response(await ctx(request).commands.execute(CommandKind.DELETE_FLOW, flow_id, {}))


def deletion_response(result: dict[str, Any]) -> Response:
    """204 when the delete finished; 202, `Location` and the deletion request when it goes on."""
    request = result.get("deletion_request")
    if request is None:
        return Response(status_code=204)
    return Json(request, status_code=202, headers={"Location": f"/flow-delete-requests/{request['id']}"})


async def _flow_doc(request: Request, flow_id: str) -> dict[str, Any]:
    return (await load_flow(request, flow_id)).doc


add_field_routes(router, "flows", CommandKind.UPDATE_FLOW, FLOW_FIELDS, _flow_doc)
