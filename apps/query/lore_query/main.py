"""lore-query: retrieval and answers behind its Dapr sidecar (`python -m lore_query`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from lore_core.dapr import Sidecar
from lore_core.embeddings import MiniLMEmbeddings
from lore_core.http import AppTokenMiddleware, install_error_handlers
from lore_core.runtime import connect_index, readiness_router, sidecar_and_index_checks
from lore_core.telemetry import instrument, tracer_provider
from lore_query.chains.extractive import build_chain
from lore_query.routes import answers
from lore_query.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    sidecar = Sidecar(settings.dapr_base_url, settings.dapr_api_token.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sidecar.wait_ready(settings.sidecar_wait_seconds)
        embeddings = MiniLMEmbeddings()
        redis, index = await connect_index(settings, sidecar, dimension=embeddings.dimension)
        app.state.index = index
        app.state.chain = build_chain(
            index=index,
            embeddings=embeddings,
            min_score=settings.min_score,
            sentences=settings.answer_sentences,
        )
        app.state.ready = True
        try:
            yield
        finally:
            await redis.aclose()
            await sidecar.aclose()

    app = FastAPI(title="lore-query", lifespan=lifespan)
    app.state.settings = settings
    app.state.sidecar = sidecar
    app.state.ready = False
    install_error_handlers(app)
    app.include_router(answers.router)
    app.include_router(readiness_router(sidecar_and_index_checks))
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
