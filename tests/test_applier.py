"""The batch applier: a failed batch is applied again, in order, and acked once."""

from __future__ import annotations

import asyncio

from agents.applier import BatchApplier


async def test_a_failed_batch_is_retried_and_acked_once_in_order() -> None:
    attempts: list[list[int]] = []
    acked: list[int] = []
    done = asyncio.Event()

    async def apply(batch: list[int]) -> None:
        attempts.append(list(batch))
        if len(attempts) == 1:
            raise ConnectionError("the database went away")

    async def ack(event: int) -> None:
        acked.append(event)
        if len(acked) == 5:
            done.set()

    applier = BatchApplier(apply, ack, max_batch=10, max_pending=100, retry_first_s=0.01)
    applier.start()
    try:
        for event in range(5):
            await applier.add(event)
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await applier.stop()
    assert attempts[0] == attempts[1] == [0, 1, 2, 3, 4]
    assert acked == [0, 1, 2, 3, 4]


async def test_nothing_is_acked_while_the_batch_keeps_failing() -> None:
    acked: list[int] = []
    tried = asyncio.Event()
    attempts = 0

    async def apply(batch: list[int]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts >= 3:
            tried.set()
        raise OSError("still down")

    async def ack(event: int) -> None:
        acked.append(event)

    applier = BatchApplier(apply, ack, max_batch=10, max_pending=100, retry_first_s=0.001, retry_max_s=0.002)
    applier.start()
    try:
        await applier.add(1)
        await asyncio.wait_for(tried.wait(), 10)
    finally:
        await applier.stop()
    assert acked == []
