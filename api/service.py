"""`/`, `/service`, `/service/storage-backends` and `/flow-delete-requests`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import TypeAdapter

from api.bodies import json_body, validate
from api.context import ctx
from api.errors import ApiError, not_found
from api.filters import tag_filter, tags_match
from api.paging import paging_headers, parse_limit
from api.responses import Json
from schemas.commands import SERVICE_TARGET, CommandKind
from schemas.resources import ServicePost
from schemas.timing import NS_PER_SEC, format_timestamp
from stores.errors import NotFound
from stores.metadata import TagFilter

router = APIRouter()

API_VERSION = "8.2"
_SERVICE_POST = TypeAdapter(ServicePost)


@router.api_route("/", methods=["GET", "HEAD"])
async def root() -> Json:
    return Json(["service", "flows", "sources", "flow-delete-requests"])


@router.api_route("/service", methods=["GET", "HEAD"])
async def service(request: Request) -> Json:
    c = ctx(request)
    settings = c.settings
    return Json({
        "type": "urn:x-tams:service.pipeline",
        "api_version": API_VERSION,
        "service_version": "0.1.0",
        "name": settings.service_name,
        **await c.store.get_service_info(),
        "min_object_timeout": format_timestamp(settings.min_object_timeout_s * NS_PER_SEC),
        "min_presigned_url_timeout": format_timestamp(settings.presigned_url_timeout_s * NS_PER_SEC),
    })


@router.post("/service")
async def update_service(request: Request) -> Json:
    """Only `name` and `description` can change; stored, and written through the agents like any change."""
    post = validate(_SERVICE_POST, await json_body(request), "service update")
    await ctx(request).commands.execute(CommandKind.UPDATE_SERVICE, str(SERVICE_TARGET),
                                        post.model_dump(exclude_none=True))
    return await service(request)


@router.api_route("/flow-delete-requests", methods=["GET", "HEAD"])
async def flow_delete_requests(request: Request) -> Json:
    """Deletions too large to finish before DELETE answered (202), with their progress."""
    params = request.query_params
    limit = parse_limit(params.get("limit"))
    records = await ctx(request).store.list_deletion_requests(after_id=params.get("page"), limit=limit + 1)
    page, more = records[:limit], len(records) > limit
    return Json(page, headers=paging_headers(request.url, limit=limit, count=len(page),
                                                       next_key=page[-1]["id"] if more else None, reverse=False))


@router.api_route("/flow-delete-requests/{request_id}", methods=["GET", "HEAD"])
async def flow_delete_request(request: Request, request_id: str) -> Json:
    try:
        return Json(await ctx(request).store.get_deletion_request(request_id))
    except NotFound:
        raise not_found(f"no deletion request {request_id}") from None


@router.api_route("/service/storage-backends", methods=["GET", "HEAD"])
async def storage_backends(request: Request) -> Json:
    """The configured backends in configuration order (the default first), filtered by their tags, paged by id.

    The spec documents no 400 here, so malformed parameters are read leniently: a filter that is not
    true/false filters nothing, and a paging key this service never issued pages to nothing."""
    params = request.query_params
    limit = parse_limit(params.get("limit"))
    reverse = params.get("reverse_order", "").lower() in ("true", "1")
    try:
        wanted = tag_filter(params)
    except ApiError:
        wanted = TagFilter()
    backends = [b for b in ctx(request).backends if tags_match(b.tags, wanted)]
    if reverse:
        backends.reverse()
    after = params.get("page")
    if after is not None:
        ids = [b.id for b in backends]
        backends = backends[ids.index(after) + 1:] if after in ids else []
    page, more = backends[:limit], len(backends) > limit
    return Json([b.describe() for b in page], headers=paging_headers(
        request.url, limit=limit, count=len(page), next_key=page[-1].id if more else None, reverse=reverse))
