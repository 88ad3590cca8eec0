"""`/`, `/service`, `/service/storage-backends` and `/flow-delete-requests`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import ORJSONResponse

from api.context import ctx
from api.errors import not_found
from api.paging import paging_headers, parse_limit
from schemas.timing import NS_PER_SEC, format_timestamp

router = APIRouter()

API_VERSION = "8.2"


@router.api_route("/", methods=["GET", "HEAD"])
async def root() -> ORJSONResponse:
    return ORJSONResponse(["service", "flows", "sources", "flow-delete-requests"])


@router.api_route("/service", methods=["GET", "HEAD"])
async def service(request: Request) -> ORJSONResponse:
    settings = ctx(request).settings
    return ORJSONResponse({
        "type": "urn:x-tams:service.pipeline",
        "api_version": API_VERSION,
        "service_version": "0.1.0",
        "name": settings.service_name,
        "min_object_timeout": format_timestamp(settings.min_object_timeout_s * NS_PER_SEC),
        "min_presigned_url_timeout": format_timestamp(settings.presigned_url_timeout_s * NS_PER_SEC),
    })


@router.api_route("/flow-delete-requests", methods=["GET", "HEAD"])
async def flow_delete_requests(request: Request) -> ORJSONResponse:
    """Deletions complete before DELETE answers (204), so there is never a request in progress."""
    limit = parse_limit(request.query_params.get("limit"))
    return ORJSONResponse([], headers=paging_headers(request.url, limit=limit, count=0, next_key=None,
                                                     reverse=False))


@router.api_route("/flow-delete-requests/{request_id}", methods=["GET", "HEAD"])
async def flow_delete_request(request_id: str) -> ORJSONResponse:
    raise not_found(f"no deletion request {request_id}: deletions complete before DELETE answers")


@router.api_route("/service/storage-backends", methods=["GET", "HEAD"])
async def storage_backends(request: Request) -> ORJSONResponse:
    backend = ctx(request).backend
    body = [{"id": backend.id, "label": backend.label, "store_type": backend.store_type,
             "provider": backend.provider, "store_product": backend.store_product, "default_storage": True}]
    return ORJSONResponse(body, headers={"X-Paging-Limit": "100", "X-Paging-Count": "1",
                                         "X-Paging-Reverse-Order": "false"})
