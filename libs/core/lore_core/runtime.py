"""Start-up, health and serving plumbing shared by the apps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from langchain_core.embeddings import Embeddings
from uvicorn.config import LOGGING_CONFIG

from lore_core.dapr import Sidecar
from lore_core.embeddings import build_embeddings
from lore_core.http import AppTokenMiddleware, install_error_handlers
from lore_core.index import VectorIndex, redis_client
from lore_core.settings import CommonSettings, EmbeddingSettings, IndexSettings
from lore_core.telemetry import configure_logging, instrument, trace_process, tracer_provider

Check = Callable[[], Awaitable[bool]]


Startup = Callable[[FastAPI, Sidecar], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def open_index(
    settings: IndexSettings, sidecar: Sidecar, *, dimension: int
) -> AsyncIterator[VectorIndex]:
    """Opens (and on exit closes) the vector index, creating it when missing.

    The Redis password is the secret named `settings.redis_password_secret` in
    `settings.secret_store`, read through the sidecar; an empty secret name means no password.
    """
    password = await sidecar.secret_value(settings.secret_store, settings.redis_password_secret)
    redis = redis_client(settings.redis_url, password)
    try:
        index = VectorIndex(
            redis,
            name=settings.index_name,
            prefix=settings.index_prefix,
            dimension=dimension,
            manifest_prefix=settings.manifest_prefix,
            options=settings.index_options(),
        )
        await index.ensure()
        yield index
    finally:
        await redis.aclose()


async def app_embeddings(settings: EmbeddingSettings, sidecar: Sidecar, *, secret_store: str) -> Embeddings:
    """The embedding provider the settings name, with its API key (`openai`) read from the secret
    named `settings.embedding_api_key_secret` through the sidecar. lore-ingest and lore-query both
    build theirs here, so questions always meet vectors of the model that made the chunks."""
    api_key = None
    if settings.embedding_provider == "openai":
        api_key = await sidecar.secret_value(secret_store, settings.embedding_api_key_secret)
    return build_embeddings(settings, api_key)


async def _safe(check: Check, timeout: float) -> bool:
    try:
        return await asyncio.wait_for(check(), timeout)
    except Exception:
        return False


def readiness_router(checks: Callable[[Request], Mapping[str, Check]], *, timeout: float = 2.0) -> APIRouter:
    """`/healthz` (the process is alive) and `/readyz` (every dependency check passes).

    Args:
        checks: Given the request, the named async checks for this app (empty until start-up ends).
        timeout: Seconds each check may take before it counts as failed.
    """
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        named = checks(request)
        names = list(named)
        results = await asyncio.gather(*(_safe(named[n], timeout) for n in names))
        report = dict(zip(names, results, strict=True))
        ready = bool(report) and all(results)
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": report}, status_code=200 if ready else 503
        )

    return router


def sidecar_and_index_checks(request: Request) -> Mapping[str, Check]:
    """Checks for an app that uses its sidecar and the vector index (set on `app.state` at start)."""
    state = request.app.state
    if not getattr(state, "ready", False):
        return {}
    sidecar: Sidecar = state.sidecar
    index: VectorIndex = state.index
    return {"sidecar": sidecar.healthy, "redis": index.ping}


def service_app(
    settings: CommonSettings,
    *,
    startup: Startup,
    checks: Callable[[Request], Mapping[str, Check]],
    sidecar_only: bool = True,
    **fastapi_args: Any,
) -> FastAPI:
    """A FastAPI app wired the way every Lore app is.

    The lifespan waits for the sidecar's outbound health, then enters ``startup`` (which puts the
    app's services on `app.state`), and only then marks the app ready. Added here: the shared JSON
    errors, `/healthz` + `/readyz` (with ``checks``), `/metrics`, tracing of requests and of calls
    to the sidecar, and, when ``sidecar_only``, the app-API-token guard.

    Args:
        settings: The app's settings; `app.state.settings` holds them.
        startup: Given the app and its sidecar client, sets up and tears down the app's services.
        checks: The readiness checks (see `readiness_router`).
        sidecar_only: Refuse calls that do not carry the app API token (all apps but the gateway).
        fastapi_args: Passed to `FastAPI` (title, version, ...).
    """
    provider = tracer_provider(settings.app_id, settings.otel_exporter_otlp_endpoint)
    sidecar = Sidecar(
        settings.dapr_base_url,
        settings.dapr_api_token.get_secret_value(),
        grpc_address=settings.dapr_grpc_address,
        timeout=settings.sidecar_call_timeout_seconds,
        tracer_provider=provider,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await sidecar.wait_ready(settings.sidecar_wait_seconds)
            async with startup(app, sidecar):
                app.state.ready = True
                yield
        finally:
            await sidecar.aclose()

    app = FastAPI(lifespan=lifespan, **fastapi_args)
    app.state.settings = settings
    app.state.sidecar = sidecar
    app.state.ready = False
    install_error_handlers(app)
    app.include_router(readiness_router(checks))
    app.state.tracer_provider = provider
    instrument(app, provider, clients=(sidecar.client,))
    if sidecar_only:
        app.add_middleware(AppTokenMiddleware, token=settings.app_api_token.get_secret_value())
    return app


def serve(app: FastAPI, settings: CommonSettings, *, host: str = "127.0.0.1", **uvicorn_options: Any) -> None:
    """Runs ``app`` with uvicorn on `settings.app_port` (loopback: only the sidecar calls it);
    ``uvicorn_options`` go to `uvicorn.run` (the gateway's header limit).

    The process serves one app, so the app's tracer provider becomes the process's: spans that
    library code opens with `trace.get_tracer` (embedding batches, index writes) and Redis commands
    belong to the app's traces.
    """
    configure_logging(settings.log_level, settings.log_format)
    trace_process(app.state.tracer_provider)
    uvicorn.run(
        app,
        host=host,
        port=settings.app_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # uvicorn's own logging config gives its loggers text handlers; without it their records
        # reach the root handler and come out as JSON like every other line.
        log_config=None if settings.log_format == "json" else LOGGING_CONFIG,
        # Each request in a fresh context. Without it, a request whose body passes uvicorn's flow
        # control high-water mark (64 KiB) resumes reading from inside its own task; asyncio then
        # registers the connection's reader with that task's context (cpython#140947), and every
        # later request on the keep-alive connection inherits it: its spans join the big upload's
        # trace, whatever `traceparent` it sends (uvicorn 0.54 protocols/http/h11_impl.py:249-256;
        # tests/integration/test_tracing.py). The apps set no context in their lifespan.
        reset_contextvars=True,
        # Idle keep-alive connections stay open longer than the sidecar keeps them in its pool. daprd's
        # app channel is a clone of Go's DefaultTransport, IdleConnTimeout 90 s (dapr v1.18.1
        # pkg/runtime/channels/channels.go:342); with uvicorn's default 5 s the app closed
        # connections daprd was about to reuse, and a POST sent on one got "connection reset by
        # peer" (a 500 from Dapr, which does not retry it; seen in CI's crash test).
        timeout_keep_alive=120,
        **uvicorn_options,
    )
