"""TAMS paging headers: Link rel=next, X-Paging-Limit, -NextKey, -Count, -Reverse-Order (ADR-0010)."""

from __future__ import annotations

import base64

import orjson
from starlette.datastructures import URL, QueryParams

from api.errors import bad_request
from stores.metadata import Listing, SortKey

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def parse_limit(raw: str | None) -> int:
    """The server picks limits (ADR-0010): a missing or unusable value gives the default, others are
    clamped to [1, MAX_LIMIT]. Several listings document no 400, so a limit is never an error."""
    try:
        limit = int(raw) if raw is not None else DEFAULT_LIMIT
    except ValueError:
        return DEFAULT_LIMIT
    return min(max(limit, 1), MAX_LIMIT)


def parse_bool(name: str, raw: str | None, default: bool = False) -> bool:
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise bad_request(f"{name} must be true or false, got {raw!r}")


def paging_headers(url: URL, *, limit: int, count: int, next_key: str | None, reverse: bool) -> dict[str, str]:
    headers = {"X-Paging-Limit": str(limit), "X-Paging-Count": str(count),
               "X-Paging-Reverse-Order": "true" if reverse else "false"}
    if next_key is not None:
        headers["X-Paging-NextKey"] = next_key
        headers["Link"] = f'<{url.include_query_params(page=next_key)}>; rel="next"'
    return headers


def listing(params: QueryParams, sorts: tuple[str, ...]) -> Listing:
    """`sort_by` (one of `sorts`, the first is the default), `reverse_order` and the `page` token."""
    sort_by = params.get("sort_by", sorts[0])
    if sort_by not in sorts:
        raise bad_request(f"sort_by must be one of {', '.join(sorts)}, got {sort_by!r}")
    reverse = parse_bool("reverse_order", params.get("reverse_order"))
    return Listing(sort_by=sort_by, reverse=reverse, after=decode_page(params.get("page"), sort_by))


def encode_page(key: SortKey, sort_by: str) -> str:
    """An opaque paging key: the sort it belongs to and the last item's sort key."""
    return base64.urlsafe_b64encode(orjson.dumps([sort_by, *key])).decode().rstrip("=")


def decode_page(raw: str | None, sort_by: str) -> SortKey | None:
    if not raw:
        return None
    try:
        name, missing, value, item_id = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if name != sort_by or missing not in (0, 1) or not isinstance(item_id, str) or not isinstance(value, int | str):
            raise ValueError(name)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise bad_request(f"page {raw!r} is not a paging key this service issued for sort_by={sort_by}") from None
    return (missing, value, item_id)
