"""The Faust application: one agent consumes ingest events and commands for the flows it owns."""

from __future__ import annotations

import logging
from typing import Any

import faust

from agents import transport
from agents.applier import BatchApplier
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

    @app.agent(channel, name="tams-ingest")
    async def ingest(stream: Any) -> None:
        processor = await _open_processor(settings)

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
            await applier.stop()
            await _close_processor(processor)

    return app


async def _open_processor(settings: Settings) -> IngestProcessor:
    from stores.factory import open_media_store, open_metadata_store, storage_backend_id

    partitions = await ensure_topics(settings.kafka_bootstrap, settings.kafka_partitions)
    store = await open_metadata_store(settings)
    media = open_media_store(settings)
    publisher = Publisher(settings.kafka_bootstrap)
    await publisher.start()
    log.info("agent ready: metadata %s, media %s", settings.metadata_location, settings.media_location)
    return IngestProcessor(store, media, publisher, storage_id=storage_backend_id(settings), partitions=partitions,
                           max_media_bytes=settings.inline_media_max_bytes,
                           delete_chunk=settings.delete_chunk_segments)


async def _close_processor(processor: IngestProcessor) -> None:
    await processor.publisher.stop()
    await processor.store.close()
    await processor.media.close()
