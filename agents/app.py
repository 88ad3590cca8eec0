"""The Faust application of a worker: the ingest agent (a service around a batched consumer) and the collector.

Faust runs the worker: its lifecycle, signals, logging and timers. Its own Kafka consumer and producer are
not started: the hot path reads through `agents.consumer.BatchConsumer` (why is said there) and every
message the agent sends goes through `topics.producer.Publisher`.
"""

from __future__ import annotations

import asyncio
import logging

import faust
from faust.app.base import BootStrategy
from mode import Service

from agents.collector import sweep_expired_allocations
from agents.consumer import BatchConsumer
from agents.ingest import DecodedBatch, IngestProcessor
from tams.settings import Settings
from topics.admin import ensure_topics
from topics.catalogue import COMMANDS, INGEST_SEGMENTS
from topics.producer import Publisher

log = logging.getLogger(__name__)


class _WithoutFaustKafka(BootStrategy):
    enable_kafka = False


class WorkerApp(faust.App):
    """A Faust app that starts no Kafka clients of Faust's own."""

    BootStrategy = _WithoutFaustKafka


class IngestAgent(Service):
    """Applies ingest events and commands for the flows on the partitions this worker owns."""

    def __init__(self, settings: Settings, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.settings = settings
        self.processor: IngestProcessor | None = None
        self.consumer: BatchConsumer | None = None

    async def on_start(self) -> None:
        self.processor = await _open_processor(self.settings)
        self.consumer = BatchConsumer(
            self.settings.kafka_bootstrap, self.settings.agent_group, (INGEST_SEGMENTS.name, COMMANDS.name),
            self.processor.decode, DecodedBatch.extend, self.processor.apply, max_batch=self.settings.ingest_batch_max,
            fetch_wait_ms=self.settings.kafka_fetch_wait_ms, session_timeout_s=self.settings.kafka_session_timeout_s)
        await self.consumer.start()
        self.add_future(self.consumer.run())

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.processor is not None:
            await _close_processor(self.processor)

    async def collect_expired_allocations(self) -> None:
        """Sweep for expired allocations of the flows this worker owns (see agents.collector)."""
        if self.processor is None or self.consumer is None:
            return
        owned = self.consumer.owned(COMMANDS.name)
        if owned:
            await sweep_expired_allocations(self.processor.store, self.processor.publisher,
                                            timeout_s=self.settings.min_object_timeout_s,
                                            partitions=self.processor.partitions[COMMANDS.name], owned=owned)


def create_app(settings: Settings) -> faust.App:
    app = WorkerApp(settings.agent_group, web_enabled=False,
                    datadir=str(settings.data_dir / "faust"))  # not the working directory
    agent = IngestAgent(settings)
    app.add_dependency(agent)
    app.timer(settings.gc_interval_s)(agent.collect_expired_allocations)
    return app


async def _open_processor(settings: Settings) -> IngestProcessor:
    from stores.backends import configured_backends
    from stores.factory import open_metadata_store

    partitions = await ensure_topics(settings.kafka_bootstrap, settings.kafka_partitions)
    store = await open_metadata_store(settings)
    backends = await asyncio.to_thread(configured_backends, settings)
    await backends.open()
    publisher = Publisher(settings.kafka_bootstrap)
    await publisher.start()
    log.info("agent ready: metadata %s, media %s", settings.metadata_location,
             ", ".join(f"{b.label} ({b.id})" for b in backends))
    return IngestProcessor(store, backends, publisher, partitions=partitions,
                           max_media_bytes=settings.inline_media_max_bytes,
                           delete_chunk=settings.delete_chunk_segments,
                           media_retry_max_s=settings.media_retry_max_s)


async def _close_processor(processor: IngestProcessor) -> None:
    await processor.publisher.stop()
    await processor.store.close()
    await processor.objects.close()
