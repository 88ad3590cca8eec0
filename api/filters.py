"""Query-string filters shared by listings: `tag.{name}` and `tag_exists.{name}`, typed integers."""

from __future__ import annotations

from enum import StrEnum

from starlette.datastructures import QueryParams

from api.bodies import UUID_RE
from api.errors import bad_request
from api.paging import parse_bool
from schemas.timing import InvalidTimeRange, TimeRange
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


INT32_MAX = 2**31 - 1


def optional_int(params: QueryParams, name: str) -> int | None:
    """A non-negative integer filter (frame sizes): anything else is a 400 that says so."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw!r}") from None
    if not 0 <= value <= INT32_MAX:
        raise bad_request(f"{name} must be between 0 and {INT32_MAX}, got {value}")
    return value


def collected_by_ids(params: QueryParams) -> tuple[str, ...] | None:
    """`collected_by_ids=a,b`: collected by any of them; an empty value: collected by nothing (ADR-0049)."""
    raw = params.get("collected_by_ids")
    if raw is None:
        return None
    return tuple(i for i in raw.split(",") if i)


def timerange_param(params: QueryParams) -> TimeRange | None:
    """The `timerange` query parameter (None when absent); a malformed one is a 400 that says why."""
    if "timerange" not in params:
        return None
    try:
        return TimeRange.parse(params["timerange"])
    except InvalidTimeRange as exc:
        raise bad_request(f"timerange: {exc}") from None


def tags_match(tags: dict[str, str | list[str]], wanted: TagFilter) -> bool:
    """Whether a tag map passes a TagFilter (for in-memory things such as storage backends)."""
    for name, values in wanted.values.items():
        have = tags.get(name)
        have_values = have if isinstance(have, list) else [] if have is None else [have]
        if not set(have_values) & set(values):
            return False
    return all((name in tags) == present for name, present in wanted.exists.items())


def choice_param(params: QueryParams, name: str, allowed: type[StrEnum]) -> str | None:
    """A query value the spec restricts to an enum (`format`, `status`): anything else is a 400."""
    raw = params.get(name)
    if raw is not None and raw not in {m.value for m in allowed}:
        raise bad_request(f"{name} must be one of {', '.join(m.value for m in allowed)}, got {raw!r}")
    return raw


def uuid_param(params: QueryParams, name: str) -> str | None:
    raw = params.get(name)
    if raw is not None and not UUID_RE.match(raw):
        raise bad_request(f"{name} must be a UUID, got {raw!r}")
    return raw
