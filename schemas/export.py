"""JSON Schemas of the topics' messages, for consumers in any language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.commands import Command, CommandReply
from schemas.deadletter import DeadLetter
from schemas.events import EventEnvelope
from schemas.ingest import IngestSegmentEvent

MESSAGE_SCHEMAS = {
    "ingest-segment-event": IngestSegmentEvent,
    "command": Command,
    "command-reply": CommandReply,
    "event-envelope": EventEnvelope,
    "dead-letter": DeadLetter,
}


def message_schema(name: str) -> dict[str, Any]:
    schema = MESSAGE_SCHEMAS[name].model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{name}.json"
    return schema


def write_schemas(out: str | Path) -> list[Path]:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in MESSAGE_SCHEMAS:
        path = folder / f"{name}.json"
        path.write_text(json.dumps(message_schema(name), indent=2) + "\n")
        written.append(path)
    return written
