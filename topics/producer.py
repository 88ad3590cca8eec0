"""Typed publishing onto the catalogue's topics, shared by the API, the agents, the demo and benchmarks."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.commands import Command, CommandReply
from schemas.deadletter import DeadLetter, encode_dead_letter
from schemas.events import EventType, encode_envelope
from schemas.ingest import IngestSegmentEvent, encode_ingest_event
from topics.catalogue import COMMANDS, DEAD_LETTERS, EVENTS, INGEST_SEGMENTS, REPLIES

Delivery = asyncio.Future[Any]


class Publisher:
    """One aiokafka producer; every method queues a message and returns its delivery future.

    Callers that must know a message is durable (the agent, before committing offsets) gather the
    futures; `linger_ms` lets many sends share one request.
    """

    def __init__(self, bootstrap: str, *, linger_ms: int = 2, max_request_size: int = 16 * 1024 * 1024) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=linger_ms, acks="all", max_batch_size=512 * 1024,
            max_request_size=max_request_size, enable_idempotence=False,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def flush(self) -> None:
        await self._producer.flush()

    async def send(self, topic: str, key: bytes | None, value: bytes, *, partition: int | None = None) -> Delivery:
        return await self._producer.send(topic, value=value, key=key, partition=partition)

    async def ingest(self, event: IngestSegmentEvent, media: bytes | None = None) -> Delivery:
        return await self.send(INGEST_SEGMENTS.name, str(event.flow_id).encode(), encode_ingest_event(event, media))

    async def command(self, command: Command) -> Delivery:
        return await self.send(COMMANDS.name, str(command.target_id).encode(), command.model_dump_json().encode())

    async def reply(self, reply: CommandReply, topic: str = REPLIES.name) -> Delivery:
        return await self.send(topic, reply.command_id.encode(), reply.model_dump_json(exclude_none=True).encode())

    async def event(self, event_type: EventType, key: str, event: dict[str, Any] | bytes) -> Delivery:
        return await self.send(EVENTS.name, key.encode(), encode_envelope(event_type, event))

    async def dead_letter(self, letter: DeadLetter, key: bytes | None, original: bytes) -> Delivery:
        return await self.send(DEAD_LETTERS.name, key, encode_dead_letter(letter, original))

