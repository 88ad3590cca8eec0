"""`/sources` and `/sources/{sourceId}`: sources are created with their first flow; their label,
description and tags are written through the sub-resources (api.fields)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.context import ctx
from api.errors import not_found
from api.fields import SOURCE_FIELDS, add_field_routes
from api.filters import choice_param, collected_by_ids, tag_filter
from api.flows import check_uuid
from api.paging import encode_page, listing, paging_headers, parse_limit
from api.responses import Json
from schemas.commands import CommandKind
from schemas.events import rfc3339_from_ns
from schemas.resources import ContentFormat
from stores.errors import NotFound
from stores.metadata import SourceQuery, SourceRecord, sort_key

router = APIRouter()


def source_body(record: SourceRecord) -> dict[str, Any]:
    body = {**record.doc, "created": rfc3339_from_ns(record.created_ns), "updated": rfc3339_from_ns(record.updated_ns)}
    if record.source_collection:
        body["source_collection"] = list(record.source_collection)
    if record.collected_by:
        body["collected_by"] = list(record.collected_by)
    return body


async def load_source(request: Request, source_id: str) -> SourceRecord:
    check_uuid(source_id, "source id")
    try:
        return await ctx(request).store.get_source(source_id)
    except NotFound:
        raise not_found(f"source {source_id} does not exist") from None


@router.api_route("/sources", methods=["GET", "HEAD"])
async def list_sources(request: Request) -> Json:
    params = request.query_params
    limit = parse_limit(params.get("limit"))
    order = listing(params, ("created", "updated", "label"))
    records = await ctx(request).store.list_sources(SourceQuery(
        limit=limit + 1, listing=order, format=choice_param(params, "format", ContentFormat), label=params.get("label"),
        tags=tag_filter(params), collected_by_ids=collected_by_ids(params)))
    page, more = records[:limit], len(records) > limit
    next_key = None
    if more:
        last = page[-1]
        next_key = encode_page(sort_key(order.sort_by, last.doc["id"], last.created_ns, last.updated_ns,
                                        last.doc.get("label")), order.sort_by)
    headers = paging_headers(request.url, limit=limit, count=len(page), next_key=next_key, reverse=order.reverse)
    return Json([source_body(r) for r in page], headers=headers)


@router.api_route("/sources/{source_id}", methods=["GET", "HEAD"])
async def get_source(request: Request, source_id: str) -> Json:
    return Json(source_body(await load_source(request, source_id)))


async def _source_doc(request: Request, source_id: str) -> dict[str, Any]:
    return (await load_source(request, source_id)).doc


add_field_routes(router, "sources", CommandKind.UPDATE_SOURCE, SOURCE_FIELDS, _source_doc)
