"""The TAMS event envelope published on `tams.events` (the same shape TAMS webhooks deliver)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

EventType = Literal[
    "flows/created", "flows/updated", "flows/deleted", "flows/segments_added", "flows/segments_deleted",
    "sources/created", "sources/updated", "sources/deleted",
]


class EventEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_timestamp: str
    event_type: EventType
    event: dict[str, Any]


def rfc3339_now() -> str:
    return rfc3339(datetime.now(UTC))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def rfc3339_from_ns(ns: int) -> str:
    return rfc3339(datetime.fromtimestamp(ns / 1e9, UTC))


def encode_envelope(event_type: EventType, event: dict[str, Any] | bytes) -> bytes:
    """Serialize an envelope; `event` may be pre-encoded JSON (segments are kept as bytes on the hot path)."""
    body = event if isinstance(event, bytes) else orjson.dumps(event)
    head = orjson.dumps({"event_timestamp": rfc3339_now(), "event_type": event_type})
    return head[:-1] + b',"event":' + body + b"}"
