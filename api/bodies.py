"""Reading JSON request bodies into models, with 400s that say exactly what was wrong."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from api.errors import ApiError, bad_request
from schemas.validation import summarise_errors

T = TypeVar("T")

MAX_BODY_BYTES = 8 * 1024 * 1024
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
UUID_RE = re.compile(UUID_PATTERN)  # the spec's uuid.json


async def json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, "PayloadTooLarge", f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    if not body:
        raise bad_request("request body is empty; a JSON document is required")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc}", "InvalidJSON") from None
    if b"\\u0000" in body:  # PostgreSQL (and so this service) cannot store NUL characters in text
        raise bad_request("strings in the body must not contain the NUL character (\\u0000)")
    return value


async def body_for_id(request: Request, entity_id: str, what: str) -> dict[str, Any]:
    """A JSON object body for the resource at `entity_id`: its own `id`, if given, must match the path."""
    raw = await json_body(request)
    if not isinstance(raw, dict):
        raise bad_request(f"a {what} must be a JSON object")
    if raw.get("id", entity_id) != entity_id:
        raise bad_request(f"the body's id {raw.get('id')!r} differs from the {what} id in the path {entity_id}")
    return {**raw, "id": entity_id}


def validate(adapter: TypeAdapter[T], value: Any, what: str) -> T:
    """Validate in JSON mode, so a JSON number is never read as a timestamp or a timerange."""
    try:
        return adapter.validate_json(orjson.dumps(value))
    except ValidationError as exc:
        raise bad_request(f"invalid {what}: " + summarise_errors(exc, what=what, most=10), "ValidationError") from None
