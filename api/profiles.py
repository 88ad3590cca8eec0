"""`/service/profiles`: immutable sets of technical fields that flows can be created from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter

from api.bodies import body_for_id, validate
from api.context import ctx
from api.errors import bad_request, not_found
from api.filters import choice_param, uuid_param
from api.flows import check_uuid
from api.paging import paging_headers, parse_limit
from api.responses import Json
from schemas.commands import CommandKind
from schemas.events import rfc3339_from_ns
from schemas.resources import ContentFormat, Profile
from stores.errors import NotFound
from stores.metadata import ProfileRecord

router = APIRouter()
_PROFILE = TypeAdapter(Profile)


def profile_body(record: ProfileRecord) -> dict[str, Any]:
    return {**record.doc, "created": rfc3339_from_ns(record.created_ns)}


@router.api_route("/service/profiles", methods=["GET", "HEAD"])
async def list_profiles(request: Request) -> Json:
    params = request.query_params
    limit = parse_limit(params.get("limit"))
    records = await ctx(request).store.list_profiles(format=choice_param(params, "format", ContentFormat),
                                                     codec=params.get("codec"),
                                                     label=params.get("label"), after_id=uuid_param(params, "page"),
                                                     limit=limit + 1)
    page, more = records[:limit], len(records) > limit
    headers = paging_headers(request.url, limit=limit, count=len(page),
                             next_key=page[-1].doc["id"] if more else None, reverse=False)
    headers = {k: v for k, v in headers.items() if k in ("Link", "X-Paging-Limit", "X-Paging-NextKey")}
    return Json([profile_body(r) for r in page], headers=headers)


@router.api_route("/service/profiles/{profile_id}", methods=["GET", "HEAD"])
async def get_profile(request: Request, profile_id: str) -> Json:
    check_uuid(profile_id, "profile id")
    try:
        return Json(profile_body(await ctx(request).store.get_profile(profile_id)))
    except NotFound:
        raise not_found(f"profile {profile_id} does not exist") from None


@router.post("/service/profiles/{profile_id}")
async def create_profile(request: Request, profile_id: str) -> Json:
    """Profiles are immutable: creating one that exists is a 400."""
    check_uuid(profile_id, "profile id")
    profile = validate(_PROFILE, await body_for_id(request, profile_id, "profile"), "profile")
    c = ctx(request)
    await c.commands.execute(CommandKind.CREATE_PROFILE, profile_id,
                             profile.model_dump(mode="json", exclude_none=True, exclude={"created"}))
    return Json(profile_body(await c.store.get_profile(profile_id)), status_code=201)


async def expand_profile(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """A flow PUT naming a profile becomes a full flow: the profile's technical fields plus the body's own."""
    profile_id = body["profile_id"]
    try:
        record = await ctx(request).store.get_profile(str(profile_id))
    except NotFound:
        raise bad_request(f"profile {profile_id} does not exist") from None
    return {**record.doc["flow_metadata"], **body}
