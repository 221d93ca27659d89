"""lore-gateway: the public REST API (`python -m lore_gateway`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request

from lore_core.dapr import Sidecar
from lore_core.runtime import Check, serve, service_app
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
    @asynccontextmanager
    async def startup(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        app.state.lore = Lore(
            sidecar,
            query_app=settings.query_app_id,
            ingest_app=settings.ingest_app_id,
        )
        yield

    app = service_app(
        settings,
        startup=startup,
        checks=_checks,
        sidecar_only=False,
        title="Lore",
        version="0.1.0",
        summary="A Dapr-native knowledge backend",
    )
    app.include_router(v1.router)
    return app


def run() -> None:
    settings = Settings()
    serve(create_app(settings), settings, host=settings.bind_host)


if __name__ == "__main__":
    run()
