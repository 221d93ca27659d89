"""lore-ingest: document ingestion behind its Dapr sidecar (`python -m lore_ingest`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from dapr.ext.fastapi import DaprApp
from fastapi import FastAPI

from lore_core.dapr import Sidecar
from lore_core.embeddings import MiniLMEmbeddings
from lore_core.http import AppTokenMiddleware, install_error_handlers
from lore_core.runtime import connect_index, readiness_router, sidecar_and_index_checks
from lore_core.telemetry import instrument, tracer_provider
from lore_ingest.routes import documents
from lore_ingest.routes.events import on_document_event
from lore_ingest.service import IngestService
from lore_ingest.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    sidecar = Sidecar(settings.dapr_base_url, settings.dapr_api_token.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sidecar.wait_ready(settings.sidecar_wait_seconds)
        embeddings = MiniLMEmbeddings()
        redis, index = await connect_index(settings, sidecar, dimension=embeddings.dimension)
        app.state.index = index
        app.state.service = IngestService(
            sidecar=sidecar,
            index=index,
            embeddings=embeddings,
            statestore=settings.statestore,
            max_document_bytes=settings.max_document_bytes,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
        )
        app.state.ready = True
        try:
            yield
        finally:
            await redis.aclose()
            await sidecar.aclose()

    app = FastAPI(title="lore-ingest", lifespan=lifespan)
    app.state.settings = settings
    app.state.sidecar = sidecar
    app.state.ready = False
    install_error_handlers(app)
    app.include_router(documents.router)
    app.include_router(readiness_router(sidecar_and_index_checks))
    DaprApp(app).subscribe(
        pubsub=settings.pubsub, topic=settings.ingest_topic, dead_letter_topic=settings.dead_letter_topic
    )(on_document_event)
    instrument(
        app, tracer_provider(settings.app_id, settings.otel_exporter_otlp_endpoint), clients=(sidecar.client,)
    )
    app.add_middleware(AppTokenMiddleware, token=settings.app_api_token.get_secret_value())
    return app


def run() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=settings.app_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    run()
