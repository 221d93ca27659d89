"""lore-gateway: the public REST API (`python -m lore_gateway`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial

from fastapi import Depends, FastAPI, Request

from lore_core.dapr import DaprError, Sidecar
from lore_core.runtime import Check, serve, service_app
from lore_gateway.auth import KeyStore, RateLimiter, authenticate, redis_storage
from lore_gateway.routes import files, jobs, keys, v1
from lore_gateway.services import Lore
from lore_gateway.settings import Settings

log = logging.getLogger(__name__)


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


async def _secret(sidecar: Sidecar, store: str, name: str) -> str | None:
    """The value of an optional secret: None when the name is empty or the secret is missing."""
    try:
        return await sidecar.secret_value(store, name)
    except DaprError:
        log.warning("secret %s not found in %s", name, store)
        return None


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def startup(app: FastAPI, sidecar: Sidecar) -> AsyncIterator[None]:
        app.state.lore = Lore(
            sidecar,
            query_app=settings.query_app_id,
            ingest_app=settings.ingest_app_id,
        )
        operator_key = await _secret(sidecar, settings.secret_store, settings.operator_key_secret)
        app.state.keys = KeyStore(sidecar, store=settings.key_store, operator_key=operator_key)
        storage = None
        if settings.rate_limit:
            password = await _secret(sidecar, settings.secret_store, settings.redis_password_secret)
            storage = redis_storage(settings.redis_url, password)
        app.state.rate_limiter = RateLimiter(storage, settings.rate_limit) if storage else None
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
    # Every /v1 route authenticates its caller (and counts it against its rate limit).
    authenticated = [Depends(authenticate)]
    app.include_router(v1.router, dependencies=authenticated)
    app.include_router(files.router, dependencies=authenticated)
    app.include_router(keys.router, dependencies=authenticated)
    app.include_router(jobs.router, dependencies=authenticated)
    return app


def run() -> None:
    settings = Settings()
    serve(create_app(settings), settings, host=settings.bind_host)


if __name__ == "__main__":
    run()
