"""Start-up and health plumbing shared by the apps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lore_core.dapr import Sidecar
from lore_core.index import VectorIndex, redis_client
from lore_core.settings import IndexSettings

Check = Callable[[], Awaitable[bool]]


async def connect_index(
    settings: IndexSettings, sidecar: Sidecar, *, dimension: int
) -> tuple[aioredis.Redis, VectorIndex]:
    """Opens the vector index, reading the Redis password from the Dapr secret store.

    The secret named `settings.redis_password_secret` in `settings.secret_store` is used as the
    password; an empty secret name means Redis has no password.
    """
    password = None
    if settings.redis_password_secret:
        secret = await sidecar.get_secret(settings.secret_store, settings.redis_password_secret)
        password = secret.get(settings.redis_password_secret) or next(iter(secret.values()), None)
    redis = redis_client(settings.redis_url, password)
    index = VectorIndex(redis, name=settings.index_name, prefix=settings.index_prefix, dimension=dimension)
    await index.ensure()
    return redis, index


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
