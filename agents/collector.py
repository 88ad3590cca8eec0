"""Garbage collection of allocations: object ids handed out by `POST /flows/{id}/storage` that no
segment registered within `min_object_timeout`.

The collector only finds them; the drop (and the deletion of any bytes uploaded to them) is a
`collect_allocations` command for the allocating flow, applied by the agent that owns the flow, in
order with that flow's registrations, so a late registration and the collection cannot race.
Each worker sweeps for the flows on the partitions it owns, so no allocation is swept twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection

from schemas.commands import Command, CommandKind
from schemas.events import rfc3339_now
from schemas.timing import NS_PER_SEC
from stores.metadata import MetadataStore
from topics.partitioning import owning_partition
from topics.producer import Publisher

SWEEP_LIMIT = 10_000


async def sweep_expired_allocations(store: MetadataStore, publisher: Publisher, *, timeout_s: int,
                                    partitions: int, owned: Collection[int]) -> int:
    """Send a collection command for each owned flow with expired allocations; returns how many were found."""
    cutoff = time.time_ns() - timeout_s * NS_PER_SEC
    by_flow: dict[str, list[str]] = {}
    for record in await store.expired_allocations(cutoff, SWEEP_LIMIT):
        flow_id = record.allocated_by_flow
        if flow_id and owning_partition(flow_id.encode(), partitions) in owned:
            by_flow.setdefault(flow_id, []).append(record.object_id)
    deliveries = [await publisher.command(Command(
        command_id=str(uuid.uuid4()), kind=CommandKind.COLLECT_ALLOCATIONS, target_id=uuid.UUID(flow_id),
        issued_at=rfc3339_now(), body={"object_ids": ids})) for flow_id, ids in by_flow.items()]
    for delivery in deliveries:
        await delivery
    return sum(len(ids) for ids in by_flow.values())
