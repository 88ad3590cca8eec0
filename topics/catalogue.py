"""The topic catalogue: every topic this system reads or writes, its key and its value format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    value: str
    description: str
    compacted: bool = False


INGEST_SEGMENTS = TopicSpec(
    name="tams.ingest.segments",
    key="flow id (UTF-8)",
    value="one line of JSON (schema ingest-segment-event) and, if `media_size` is set, a newline and the media bytes",
    description="Segment events published by encoders.",
)
COMMANDS = TopicSpec(
    name="tams.commands",
    key="flow id, or source id for source-only changes (UTF-8)",
    value="JSON (schema command): a REST write for the agent that owns the flow",
    description="Writes the API received over REST; applied by the same agents as ingest events.",
)
REPLIES = TopicSpec(
    name="tams.replies",
    key="command id (UTF-8)",
    value="JSON (schema command-reply): the outcome of a command",
    description="Outcomes the agents report back to the API instance that is waiting for them.",
)
EVENTS = TopicSpec(
    name="tams.events",
    key="flow id or source id (UTF-8)",
    value="JSON (schema event-envelope): {event_timestamp, event_type, event} as in TAMS webhooks",
    description="Every change, for stream-analytics consumers and webhook delivery.",
)
DEAD_LETTERS = TopicSpec(
    name="tams.ingest.dlq",
    key="the rejected message's key",
    value="one line of JSON (schema dead-letter) with the reason, a newline, then the rejected message's bytes unchanged",
    description="Input an agent could not apply, with a machine-readable reason.",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (INGEST_SEGMENTS, COMMANDS, REPLIES, EVENTS, DEAD_LETTERS)

# Topics whose partitions are owned by one agent each: they must have the same partition count
# so a flow's ingest events and commands land on partitions with the same number.
OWNED_BY_FLOW: tuple[TopicSpec, ...] = (INGEST_SEGMENTS, COMMANDS)
