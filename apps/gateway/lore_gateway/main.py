"""lore-gateway: the public REST API (`python -m lore_gateway`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial

import uvicorn
from fastapi import FastAPI, Request

from lore_core.dapr import Sidecar
from lore_core.http import install_error_handlers
from lore_core.runtime import Check, readiness_router
from lore_core.telemetry import instrument, tracer_provider
from lore_gateway.routes import v1
from lore_gateway.services import Lore
from lore_gateway.settings import Settings


def _checks(request: Request) -> Mapping[str, Check]:
    state = request.app.state
    if not state.ready:
        return {}
    lore: Lore = state.lore
    settings: Settings = state.settings
    return {
        "sidecar": state.sidecar.healthy,
        settings.query_app_id: partial(lore.app_healthy, settings.query_app_id),
        settings.ingest_app_id: partial(lore.app_healthy, settings.ingest_app_id),
    }


def create_app(settings: Settings) -> FastAPI:
    sidecar = Sidecar(settings.dapr_base_url, settings.dapr_api_token.get_secret_value())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sidecar.wait_ready(settings.sidecar_wait_seconds)
        app.state.ready = True
        try:
            yield
        finally:
            await sidecar.aclose()

    app = FastAPI(title="Lore", version="0.1.0", summary="A Dapr-native knowledge backend", lifespan=lifespan)
    app.state.settings = settings
    app.state.sidecar = sidecar
    app.state.ready = False
    app.state.lore = Lore(
        sidecar,
        query_app=settings.query_app_id,
        ingest_app=settings.ingest_app_id,
        pubsub=settings.pubsub,
        ingest_topic=settings.ingest_topic,
    )
    install_error_handlers(app)
    app.include_router(v1.router)
    app.include_router(readiness_router(_checks))
    instrument(
        app, tracer_provider(settings.app_id, settings.otel_exporter_otlp_endpoint), clients=(sidecar.client,)
    )
    return app


def run() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.app_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    run()
