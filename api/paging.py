"""TAMS paging headers: Link rel=next, X-Paging-Limit, -NextKey, -Count, -Reverse-Order (ADR-0010)."""

from __future__ import annotations

from starlette.datastructures import URL

from api.errors import bad_request

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
