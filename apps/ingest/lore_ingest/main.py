"""lore-ingest: document ingestion behind its Dapr sidecar (`python -m lore_ingest`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dapr.ext.fastapi import DaprApp
from fastapi import FastAPI

from lore_core.dapr import Sidecar
from lore_core.embeddings import MiniLMEmbeddings
from lore_core.runtime import open_index, serve, service_app, sidecar_and_index_checks
from lore_ingest.routes import documents
from lore_ingest.routes.events import on_document_event
from lore_ingest.service import IngestService
from lore_ingest.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def startup(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        embeddings = MiniLMEmbeddings()
        async with open_index(settings, sidecar, dimension=embeddings.dimension) as index:
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
            yield

    app = service_app(settings, startup=startup, checks=sidecar_and_index_checks, title="lore-ingest")
    app.include_router(documents.router)
    DaprApp(app).subscribe(
        pubsub=settings.pubsub, topic=settings.ingest_topic, dead_letter_topic=settings.dead_letter_topic
    )(on_document_event)
    return app


def run() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    run()
