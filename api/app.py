"""The FastAPI service: TAMS reads from the metadata store, writes through the agents, media URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api import flows, objects, profiles, segments, service, sources
from api.commands import CommandClient
from api.context import Context, ctx
from api.errors import error_response, install_error_handlers
from api.media import media_router
from api.metrics import MetricsMiddleware
from api.principal import PrincipalMiddleware
from api.responses import Json
from stores.backends import LocalUrls, StorageBackends, configured_backends
from stores.factory import open_metadata_store
from stores.metadata import FlowQuery
from tams.settings import Settings
from topics.admin import ensure_topics
from topics.producer import Publisher


def create_app(settings: Settings, backends: StorageBackends | None = None) -> FastAPI:
    """The service; `backends` default to the configured ones (local ones add media routes, so they come first)."""
    backends = backends if backends is not None else configured_backends(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings.kafka_bootstrap, settings.kafka_partitions)
        await backends.open()
        store = await open_metadata_store(settings, readers=8)
        publisher = Publisher(settings.kafka_bootstrap, linger_ms=0)
        await publisher.start()
        commands = CommandClient(settings.kafka_bootstrap, publisher, timeout_s=settings.command_timeout_s,
                                 fetch_wait_ms=settings.kafka_fetch_wait_ms)
        await commands.start()
        app.state.ctx = Context(settings=settings, store=store, commands=commands, backends=backends)
        try:
            yield
        finally:
            await commands.stop()
            await publisher.stop()
            await store.close()
            await backends.close()

    app = FastAPI(title="TAMS pipeline", version="0.1.0", lifespan=lifespan, default_response_class=Json,
                  docs_url="/docs", openapi_url="/openapi.json")
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(PrincipalMiddleware, trusted_header=settings.principal_header)
    app.include_router(service.router)
    app.include_router(flows.router)
    app.include_router(segments.router)
    app.include_router(sources.router)
    app.include_router(objects.router)
    app.include_router(profiles.router)
    for backend in backends:
        if isinstance(backend.urls, LocalUrls) and backend.local_route is not None:
            app.include_router(media_router(backend.media, backend.urls.signer,
                                            max_upload_bytes=settings.media_upload_max_bytes),
                               prefix=backend.local_route)

    @app.get("/health", include_in_schema=False)
    async def health(request: Request) -> Response:
        c = ctx(request)
        if not c.commands.running:
            return error_response(503, "Unhealthy", "the command reply listener is not running")
        await c.store.list_flows(FlowQuery(limit=1))
        return Json({"status": "ok"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
