"""What an agent publishes on `tams.ingest.dlq` for input it cannot apply."""

from __future__ import annotations

from enum import StrEnum

import orjson
from pydantic import BaseModel, ConfigDict


class RejectReason(StrEnum):
    """Machine-readable reasons, shared by the dead-letter topic and command replies."""

    BAD_FRAMING = "bad_framing"
    INVALID_EVENT = "invalid_event"
    INVALID_TIMERANGE = "invalid_timerange"
    MEDIA_TOO_LARGE = "media_too_large"
    UNKNOWN_FLOW = "unknown_flow"
    UNKNOWN_SOURCE = "unknown_source"
    FLOW_READ_ONLY = "flow_read_only"
    FLOW_HAS_NO_CONTAINER = "flow_has_no_container"
    OVERLAP = "overlap"
    MISSING_OBJECT = "missing_object"
    OBJECT_CONFLICT = "object_conflict"
    INIT_SEGMENTS_MISMATCH = "init_segments_mismatch"
    INVALID_COMMAND = "invalid_command"
    CONFLICT = "conflict"
    FIELD_NOT_SET = "field_not_set"
    INTERNAL_ERROR = "internal_error"  # the agent failed applying it (a bug or an outage); see the worker log


class DeadLetter(BaseModel):
    """Header line of a dead-letter message; the rejected bytes follow it after a newline, unchanged."""

    model_config = ConfigDict(extra="forbid")

    reason: RejectReason
    detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    event_id: str | None = None
    flow_id: str | None = None
    rejected_at: str


def encode_dead_letter(letter: DeadLetter, original: bytes) -> bytes:
    return orjson.dumps(letter.model_dump(mode="json", exclude_none=True)) + b"\n" + original


def decode_dead_letter(value: bytes) -> tuple[DeadLetter, bytes]:
    header, _, original = value.partition(b"\n")
    return DeadLetter.model_validate_json(header), original
