"""Which partition owns a flow: Kafka's default (murmur2) partitioner, as the Java client and aiokafka use it.

Producers with another partitioner (librdkafka's default is crc32) would spread one flow over two
partitions and so over two writers; agents re-route such messages to the owning partition.
"""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=1 << 16)  # the agent asks once per message, for a few hot flows; murmur2 is pure Python
def owning_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a keyed message."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
