"""Sub-resources that read or write one field of a flow or source: label, description, tags, ...

Reads come from the metadata store; writes are field patches sent to the agent that owns the flow
(or source), which applies them to the current document, so concurrent writes never lose updates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import Field, StrictBool, StrictInt, StrictStr, TypeAdapter

from api.bodies import json_body, validate
from api.context import ctx
from api.errors import bad_request, forbidden, not_found
from api.responses import Json
from schemas.commands import CommandKind
from schemas.resources import FlowCollectionItem

Loader = Callable[[Request, str], Awaitable[dict[str, Any]]]

BIT_RATE = Annotated[StrictInt, Field(ge=0)]  # strict: JSON true is not a bit rate
TAG_VALUE: TypeAdapter[Any] = TypeAdapter(StrictStr | list[StrictStr])
FLOW_FIELDS: dict[str, TypeAdapter[Any]] = {
    "label": TypeAdapter(StrictStr), "description": TypeAdapter(StrictStr), "read_only": TypeAdapter(StrictBool),
    "max_bit_rate": TypeAdapter(BIT_RATE), "avg_bit_rate": TypeAdapter(BIT_RATE),
    "flow_collection": TypeAdapter(list[FlowCollectionItem]),
}
SOURCE_FIELDS: dict[str, TypeAdapter[Any]] = {"label": TypeAdapter(StrictStr), "description": TypeAdapter(StrictStr)}
NOT_DELETABLE = {"read_only"}  # the spec gives read_only no DELETE
DEFAULTS: dict[str, Any] = {"read_only": False, "flow_collection": []}


def add_field_routes(router: APIRouter, collection: str, kind: CommandKind, fields: dict[str, TypeAdapter[Any]],
                     load: Loader) -> None:
    """Register GET/HEAD/PUT/DELETE for each field and for tags under `/{collection}/{id}/`."""
    singular = collection.rstrip("s")

    async def send(request: Request, entity_id: str, doc: dict[str, Any], field: str, patch: dict[str, Any]) -> Response:
        if doc.get("read_only") and field != "read_only":
            raise forbidden(f"{singular} {entity_id} is read-only")
        await ctx(request).commands.execute(kind, entity_id, {"patches": [patch]})
        return Response(status_code=204)

    def field_routes(field: str, adapter: TypeAdapter[Any]) -> None:
        path = f"/{collection}/{{entity_id}}/{field}"

        @router.api_route(path, methods=["GET", "HEAD"], name=f"get_{singular}_{field}")
        async def get_field(request: Request, entity_id: str) -> Json:
            doc = await load(request, entity_id)
            if field not in doc and field not in DEFAULTS:
                raise not_found(f"{singular} {entity_id} has no {field}")
            return Json(doc.get(field, DEFAULTS.get(field)))

        @router.put(path, name=f"put_{singular}_{field}")
        async def put_field(request: Request, entity_id: str) -> Response:
            doc = await load(request, entity_id)
            value = adapter.dump_python(validate(adapter, await json_body(request), field), mode="json",
                                        exclude_none=True)
            if field == "avg_bit_rate" and doc.get("profile_id"):
                raise bad_request(f"{singular} {entity_id} takes avg_bit_rate from profile {doc['profile_id']}")
            return await send(request, entity_id, doc, field, {"path": [field], "value": value})

        if field not in NOT_DELETABLE:
            @router.delete(path, name=f"delete_{singular}_{field}")
            async def delete_field(request: Request, entity_id: str) -> Response:
                doc = await load(request, entity_id)
                if field not in doc:
                    raise not_found(f"{singular} {entity_id} has no {field}")
                return await send(request, entity_id, doc, field, {"path": [field], "remove": True})

    for name, adapter in fields.items():
        field_routes(name, adapter)

    @router.api_route(f"/{collection}/{{entity_id}}/tags", methods=["GET", "HEAD"], name=f"get_{singular}_tags")
    async def get_tags(request: Request, entity_id: str) -> Json:
        return Json((await load(request, entity_id)).get("tags") or {})

    tag_path = f"/{collection}/{{entity_id}}/tags/{{name}}"

    @router.api_route(tag_path, methods=["GET", "HEAD"], name=f"get_{singular}_tag")
    async def get_tag(request: Request, entity_id: str, name: str) -> Json:
        tags = (await load(request, entity_id)).get("tags") or {}
        if name not in tags:
            raise not_found(f"{singular} {entity_id} has no tag {name!r}")
        return Json(tags[name])

    @router.put(tag_path, name=f"put_{singular}_tag")
    async def put_tag(request: Request, entity_id: str, name: str) -> Response:
        doc = await load(request, entity_id)
        value = validate(TAG_VALUE, await json_body(request), f"tag {name!r}")
        return await send(request, entity_id, doc, "tags", {"path": ["tags", name], "value": value})

    @router.delete(tag_path, name=f"delete_{singular}_tag")
    async def delete_tag(request: Request, entity_id: str, name: str) -> Response:
        doc = await load(request, entity_id)
        if name not in (doc.get("tags") or {}):
            raise not_found(f"{singular} {entity_id} has no tag {name!r}")
        return await send(request, entity_id, doc, "tags", {"path": ["tags", name], "remove": True})
