"""Creating the catalogue's topics, so producers never race topic auto-creation."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from topics.catalogue import ALL_TOPICS, OWNED_BY_FLOW


class TopicLayoutError(RuntimeError):
    """Existing topics disagree with what the agents need (e.g. different partition counts)."""


async def ensure_topics(bootstrap: str, partitions: int) -> dict[str, int]:
    """Create missing topics; return each topic's partition count. Flow-owned topics must match."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t.name, partitions, 1) for t in ALL_TOPICS if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
        described = await admin.describe_topics([t.name for t in ALL_TOPICS])
        counts = {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()
    owned = {counts.get(t.name) for t in OWNED_BY_FLOW}
    if len(owned) != 1:
        raise TopicLayoutError(f"topics {[t.name for t in OWNED_BY_FLOW]} must have equal partition counts: {counts}")
    return counts
