"""lore-ingest: document ingestion behind its Dapr sidecar (`python -m lore_ingest`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dapr.ext.fastapi import DaprApp
from fastapi import FastAPI

from lore_core.dapr import Sidecar
from lore_core.runtime import app_embeddings, open_index, serve, service_app, sidecar_and_index_checks
from lore_ingest.backlog import watch_backlog
from lore_ingest.batcher import EmbeddingBatcher
from lore_ingest.jobs.store import JobStore
from lore_ingest.jobs.workflow import JobRunner
from lore_ingest.routes import documents, files, jobs
from lore_ingest.routes.events import on_document_event, on_exhausted_event
from lore_ingest.service import IngestService
from lore_ingest.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def startup(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        # Each embedding worker gets an equal share of the cores unless EMBEDDING_THREADS says.
        threads = settings.embedding_threads or max(1, (os.cpu_count() or 1) // settings.embed_workers)
        model_settings = settings.model_copy(update={"embedding_threads": threads})
        embeddings = await app_embeddings(model_settings, sidecar, secret_store=settings.secret_store)
        batcher = EmbeddingBatcher(
            embeddings, max_batch=settings.embed_max_batch, workers=settings.embed_workers
        )
        async with batcher, open_index(settings, sidecar, dimension=settings.embedding_dimension) as index:
            app.state.index = index
            app.state.batcher = batcher
            app.state.service = IngestService(
                sidecar=sidecar,
                index=index,
                batcher=batcher,
                statestore=settings.statestore,
                topics=settings,
                max_document_bytes=settings.max_document_bytes,
                chunk_size=settings.chunk_size,
                chunk_overlap=settings.chunk_overlap,
            )
            app.state.jobs = JobRunner(
                service=app.state.service,
                store=JobStore(
                    sidecar, settings.statestore, retention_seconds=settings.job_retention_seconds
                ),
                grpc_host=settings.dapr_host,
                grpc_port=settings.dapr_grpc_port,
                api_token=settings.dapr_api_token.get_secret_value(),
            )
            await app.state.jobs.start()
            try:
                # Dapr's Redis Streams consumer group is the subscriber's app-id (consumerID).
                async with watch_backlog(index.redis, stream=settings.ingest_topic, group=settings.app_id):
                    yield
            finally:
                await app.state.jobs.stop()

    app = service_app(settings, startup=startup, checks=sidecar_and_index_checks, title="lore-ingest")
    app.include_router(documents.router)
    app.include_router(files.router)
    app.include_router(jobs.router)
    dapr = DaprApp(app)
    # Events Dapr could not deliver within the `delivery` policy go to `exhausted_topic`, where
    # `on_exhausted_event` turns them into regular dead letters (one shape for every dead letter).
    dapr.subscribe(
        pubsub=settings.pubsub, topic=settings.ingest_topic, dead_letter_topic=settings.exhausted_topic
    )(on_document_event)
    dapr.subscribe(pubsub=settings.pubsub, topic=settings.exhausted_topic)(on_exhausted_event)
    return app


def run() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    run()
