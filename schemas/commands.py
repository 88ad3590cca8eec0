"""Commands: REST writes the API puts on `tams.commands` for the agent that owns the flow, and their replies."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.deadletter import RejectReason


class CommandKind(StrEnum):
    PUT_FLOW = "put_flow"
    ALLOCATE_STORAGE = "allocate_storage"
    ADD_SEGMENTS = "add_segments"
    UPDATE_FLOW = "update_flow"
    UPDATE_SOURCE = "update_source"
    DELETE_SEGMENTS = "delete_segments"
    DELETE_FLOW = "delete_flow"
    UPDATE_SERVICE = "update_service"
    CREATE_PROFILE = "create_profile"
    ADD_INSTANCE = "add_instance"
    REMOVE_INSTANCE = "remove_instance"
    COLLECT_ALLOCATIONS = "collect_allocations"


SERVICE_TARGET = UUID("6d2b7c1e-0f4a-5b3e-9c8d-7a6f5e4d3c2b")
"""The `target_id` (and so the partition) of service-wide commands: one writer for the service record."""


class FieldPatch(BaseModel):
    """Set or remove one field (or one tag: `["tags", name]`) of a flow or source document."""

    model_config = ConfigDict(extra="forbid")

    path: list[str] = Field(min_length=1, max_length=2)
    value: Any = None
    remove: bool = False


class Command(BaseModel):
    """One write for one flow (or source). `body` is the already-validated REST body, in TAMS wire form."""

    model_config = ConfigDict(extra="forbid")

    command_id: str = Field(min_length=1, max_length=200, description="Idempotency key and reply correlation.")
    kind: CommandKind
    target_id: UUID = Field(description="The flow, or the source for source-only commands; also the message key.")
    reply_to: str | None = Field(default=None, description="Topic to publish the CommandReply on.")
    issued_at: str
    body: dict[str, Any]
    principal: str | None = Field(default=None, description="Who asked (created_by/updated_by), when known.")


class CommandReply(BaseModel):
    """The outcome of a command: applied (with a result) or rejected with a reason."""

    model_config = ConfigDict(extra="forbid")

    command_id: str
    ok: bool
    reason: RejectReason | None = None
    detail: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)
