"""Turning a REST write into a command on Kafka and waiting for the owning agent's reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from api.errors import ApiError, from_reason
from api.principal import current_principal
from schemas.commands import Command, CommandKind, CommandReply
from schemas.events import rfc3339_now
from topics.catalogue import REPLIES
from topics.producer import Publisher

log = logging.getLogger(__name__)


class CommandTimeout(ApiError):
    def __init__(self, seconds: float) -> None:
        super().__init__(503, "CommandTimeout", f"the write was queued but not applied within {seconds:.0f}s; "
                                                "it will still be applied, retry to see its outcome")


class CommandClient:
    """Publishes commands and matches replies (read from every partition of `tams.replies`) to waiters."""

    def __init__(self, bootstrap: str, publisher: Publisher, *, timeout_s: float, fetch_wait_ms: int) -> None:
        self._publisher = publisher
        self._timeout = timeout_s
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                          fetch_max_wait_ms=fetch_wait_ms)
        self._waiting: dict[str, asyncio.Future[CommandReply]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        partitions = await self._reply_partitions()
        self._consumer.assign([TopicPartition(REPLIES.name, p) for p in partitions])
        await self._consumer.seek_to_end()
        for tp in self._consumer.assignment():  # resolve positions now, so no reply can slip past us
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._listen(), name="command-replies")

    async def _reply_partitions(self) -> set[int]:
        for _ in range(100):
            await self._consumer.topics()
            partitions = self._consumer.partitions_for_topic(REPLIES.name)
            if partitions:
                return partitions
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {REPLIES.name} has no partitions; is the broker set up?")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _listen(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    waiter = self._waiting.pop(record.key.decode() if record.key else "", None)
                    if waiter is not None and not waiter.done():
                        try:
                            waiter.set_result(CommandReply.model_validate_json(record.value))
                        except Exception as exc:  # a malformed reply must not stop the listener
                            waiter.set_exception(exc)

    async def execute(self, kind: CommandKind, target_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a command for a flow (or source) and return its result; raise ApiError when it was rejected."""
        command = Command(command_id=str(uuid.uuid4()), kind=kind, target_id=target_id, reply_to=REPLIES.name,
                          issued_at=rfc3339_now(), body=body, principal=current_principal.get())
        waiter: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
        self._waiting[command.command_id] = waiter
        try:
            await (await self._publisher.command(command))
            reply = await asyncio.wait_for(waiter, self._timeout)
        except TimeoutError:
            raise CommandTimeout(self._timeout) from None
        finally:
            self._waiting.pop(command.command_id, None)
        if not reply.ok:
            raise from_reason(reply.reason, reply.detail)
        return reply.result
