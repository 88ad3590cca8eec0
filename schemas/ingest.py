"""The ingest event an encoder publishes on `tams.ingest.segments`, and its framing.

A message value is one line of compact JSON (an `IngestSegmentEvent`). When the event carries its
media inline, `media_size` is set and the line is followed by a newline and exactly that many raw
bytes: no base64, one copy, and a consumer can read the header with any Kafka tool.
"""

from __future__ import annotations

from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.resources import NonNegativeTimestamp
from schemas.timing import TimeRange, Timestamp
from schemas.validation import summarise_errors

OBJECT_ID_MAX = 512


class IngestSegmentEvent(BaseModel):
    """One segment for one flow: the fields of a TAMS segment POST, plus idempotency and media."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=200, description="Idempotency key: the same id is applied once.")
    flow_id: UUID
    timerange: TimeRange
    object_id: str | None = Field(
        default=None, min_length=1, max_length=OBJECT_ID_MAX,
        description="An object allocated by POST /flows/{id}/storage and uploaded; or, with inline media, the id "
        "to store it under (default: derived from event_id).",
    )
    media_size: int | None = Field(
        default=None, ge=0, description="Set when the media bytes follow the JSON line; their exact length."
    )
    ts_offset: Timestamp | None = None
    last_duration: NonNegativeTimestamp | None = None
    key_frame_count: int | None = Field(default=None, ge=0)
    init_object_id: str | None = Field(default=None, min_length=1, max_length=OBJECT_ID_MAX)
    object_timerange: TimeRange | None = None

    @model_validator(mode="after")
    def _object_or_media(self) -> IngestSegmentEvent:
        if self.object_id is None and self.media_size is None:
            raise ValueError("an ingest event needs either object_id (uploaded media) or media_size (inline media)")
        return self

    @property
    def inline(self) -> bool:
        return self.media_size is not None


class FramingError(ValueError):
    """The message value is not a JSON line optionally followed by the announced media bytes."""


class InvalidEvent(ValueError):
    """The JSON line is not a valid ingest event; `fields` names the offending top-level fields."""

    def __init__(self, message: str, fields: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.fields = fields


class MediaTooLarge(ValueError):
    """Inline media is larger than the configured limit."""


def encode_ingest_event(event: IngestSegmentEvent, media: bytes | None = None) -> bytes:
    """Frame an event (and its inline media) as a Kafka message value."""
    if (media is None) != (event.media_size is None):
        raise ValueError("media must be given exactly when media_size is set")
    if media is not None and len(media) != event.media_size:
        raise ValueError(f"media is {len(media)} bytes but media_size says {event.media_size}")
    header = event.model_dump_json(exclude_none=True).encode()
    return header if media is None else header + b"\n" + media


def decode_ingest_event(value: bytes, *, max_media_bytes: int) -> tuple[IngestSegmentEvent, bytes | None]:
    """Split and validate a message value; raises FramingError, InvalidEvent or MediaTooLarge."""
    newline = value.find(b"\n")
    header, rest = (value, b"") if newline < 0 else (value[:newline], value[newline + 1 :])
    try:
        raw = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise FramingError(f"the first line is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise FramingError("the first line must be a JSON object")
    if b"\\u0000" in header:  # no metadata store here can keep NUL characters in text
        raise InvalidEvent("strings in the event must not contain the NUL character (\\u0000)", frozenset())
    try:
        event = IngestSegmentEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(summarise_errors(exc, what="event"), frozenset(str(e["loc"][0]) for e in exc.errors() if e["loc"])) from None
    if event.media_size is None:
        if rest.strip():
            raise FramingError("bytes follow the JSON line but media_size is not set")
        return event, None
    if event.media_size > max_media_bytes:
        raise MediaTooLarge(f"inline media is {event.media_size} bytes; the limit is {max_media_bytes}")
    if newline < 0 or len(rest) != event.media_size:
        raise FramingError(f"media_size is {event.media_size} but {len(rest)} bytes follow the JSON line")
    return event, rest


def inline_object_id(event: IngestSegmentEvent) -> str:
    """The object id inline media is stored under: stable across redeliveries of the same event."""
    return event.object_id or f"ingest-{event.flow_id}-{event.event_id}"
