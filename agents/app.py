"""The Faust application: one agent consumes ingest events and commands for the flows it owns."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from agents import transport
from agents.applier import BatchApplier
from agents.collector import sweep_expired_allocations
from agents.ingest import IngestProcessor, Message
from tams.settings import Settings
from topics.admin import ensure_topics
from topics.catalogue import COMMANDS, INGEST_SEGMENTS
from topics.producer import Publisher

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    scheme = transport.register(settings.kafka_fetch_wait_ms)
    brokers = ";".join(f"{scheme}://{b.strip()}" for b in settings.kafka_bootstrap.split(","))
    app = faust.App(
        settings.agent_group,
        broker=brokers,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_s / 5),
        web_enabled=False,
        datadir=str(settings.data_dir / "faust"),  # not the working directory
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=1,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, settings.ingest_batch_max * 2),
        broker_max_poll_records=settings.ingest_batch_max,
        producer_max_request_size=16 * 1024 * 1024,
        consumer_max_fetch_size=16 * 1024 * 1024,
    )
    channel = app.topic(INGEST_SEGMENTS.name, COMMANDS.name, key_type=bytes, value_type=bytes,
                        key_serializer="raw", value_serializer="raw")

    running: dict[str, IngestProcessor] = {}

    @app.agent(channel, name="tams-ingest")
    async def ingest(stream: Any) -> None:
        processor = running["processor"] = await _open_processor(settings)

        async def apply(events: Any) -> None:
            await processor.process([
                Message(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
                for e in events
            ])

        applier = BatchApplier(apply, stream.ack, max_batch=settings.ingest_batch_max,
                               max_pending=settings.ingest_max_pending)
        applier.start()
        try:
            async for event in stream.noack().events():
                await applier.add(event)
        finally:
            running.pop("processor", None)
            await applier.stop()
            await _close_processor(processor)

    @app.timer(settings.gc_interval_s)
    async def collect_expired_allocations() -> None:
        processor = running.get("processor")
        if processor is None:
            return
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == COMMANDS.name}
        if owned:
            await sweep_expired_allocations(processor.store, processor.publisher,
                                            timeout_s=settings.min_object_timeout_s,
                                            partitions=processor.partitions[COMMANDS.name], owned=owned)

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
