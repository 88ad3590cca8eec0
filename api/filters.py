"""Query-string filters shared by listings: `tag.{name}` and `tag_exists.{name}`, typed integers."""

from __future__ import annotations

from starlette.datastructures import QueryParams

from api.errors import bad_request
from api.paging import parse_bool
from stores.metadata import TagFilter


def tag_filter(params: QueryParams, prefix: str = "tag") -> TagFilter:
    """`tag.name=a,b` matches any listed value (any element of an array tag); `tag_exists.name=true|false`."""
    values: dict[str, tuple[str, ...]] = {}
    exists: dict[str, bool] = {}
    for key, value in params.multi_items():
        if key.startswith(f"{prefix}."):
            values[key[len(prefix) + 1:]] = tuple(value.split(","))
        elif key.startswith(f"{prefix}_exists."):
            exists[key[len(prefix) + 8:]] = parse_bool(key, value)
    return TagFilter(values, exists)


def optional_int(params: QueryParams, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw!r}") from None
