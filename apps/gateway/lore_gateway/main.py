"""lore-gateway: the public REST API (`python -m lore_gateway`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from lore_core.dapr import DaprError, Sidecar
from lore_core.http import error_body
from lore_core.runtime import Check, serve, service_app
from lore_gateway.auth import KeyStore, RateLimiter, authenticate, redis_storage
from lore_gateway.errors import errors
from lore_gateway.routes import files, jobs, keys, v1
from lore_gateway.services import Lore
from lore_gateway.settings import Settings

log = logging.getLogger(__name__)

# Request headers: uvicorn's h11 parser refuses a request whose line and headers pass
# `h11_max_incomplete_event_size` (h11 0.16 `DEFAULT_MAX_INCOMPLETE_EVENT_SIZE` = 16 KiB) with its
# own `text/plain` 400 (uvicorn 0.54 protocols/http/h11_impl.py:182-185). The gateway lets h11
# read up to `_H11_BUFFER` so that `HeaderLimit` answers anything past `MAX_HEADER_BYTES` (16 KiB,
# what h11 allowed before) with the API's JSON error; only headers past `_H11_BUFFER` still get
# uvicorn's plain 400.
MAX_HEADER_BYTES = 16 * 1024
_H11_BUFFER = 256 * 1024


class HeaderLimit:
    """Refuses a request whose headers are over `MAX_HEADER_BYTES` with 431 and a JSON error, before
    any of them (an oversized `Authorization`, say) is read or logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > MAX_HEADER_BYTES:
                detail = f"request headers are {size} bytes; the limit is {MAX_HEADER_BYTES}"
                response = JSONResponse(error_body("headers_too_large", detail), status_code=431)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
    refused = errors(401, 429, 431)
    for router in (v1.router, files.router, keys.router, jobs.router):
        app.include_router(router, dependencies=authenticated, responses=refused)
    app.add_middleware(HeaderLimit)
    app.add_exception_handler(ValidationError, _broken_upstream)
    return app


async def _broken_upstream(request: Request, exc: Exception) -> JSONResponse:
    """An answer of lore-ingest or lore-query that does not fit its contract: 502, not a 500.

    Requests are validated into `ApiError`s (`lore_core.http.parse_body` / `validate`), so a pydantic
    `ValidationError` that reaches this handler comes from reading a callee's answer (found by
    tests/integration/test_api_fuzz.py: a 2xx answer that was not the route's model). Only field
    paths are logged, never the values (they may hold documents).
    """
    assert isinstance(exc, ValidationError)
    fields = [".".join(str(p) for p in error["loc"]) for error in exc.errors(include_input=False)]
    log.warning(
        "%s %s: an upstream answer is not a valid %s (%s)",
        request.method,
        request.url.path,
        exc.title,
        fields,
    )
    return JSONResponse(
        error_body("upstream_error", f"an upstream answer is not a valid {exc.title}"), status_code=502
    )


def run() -> None:
    settings = Settings()
    serve(create_app(settings), settings, host=settings.bind_host, h11_max_incomplete_event_size=_H11_BUFFER)


if __name__ == "__main__":
    run()
