"""A Faust transport whose consumer waits at most `fetch_wait_ms` for data.

faust-streaming hard-codes `fetch_max_wait_ms=1500`. Tansu, the embedded broker, holds an empty
fetch for that whole time instead of answering when data arrives, which would add up to 1.5 s to
every idle-to-busy transition. Kafka answers early either way, so a short wait only costs idle polls.
"""

from __future__ import annotations

from typing import Any

from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

SCHEME = "tamskafka"
FETCH_WAIT_MS = 20


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS  # read by AIOKafkaConsumer.start() when it builds its Fetcher
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


def register(fetch_wait_ms: int) -> str:
    """Make `tamskafka://` URLs resolve to this transport; returns the scheme."""
    global FETCH_WAIT_MS
    FETCH_WAIT_MS = fetch_wait_ms
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
    return SCHEME
