"""JSON errors and request guards shared by the apps.

Every error a Lore app returns has the body `{"error": <code>, "detail": <text or list>}`.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from lore_core.dapr import DaprError, EtagMismatchError

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """An error with an HTTP status, a stable machine-readable code and a human detail."""

    def __init__(
        self, status_code: int, code: str, detail: Any, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.headers = headers


def error_body(code: str, detail: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail}


def _field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
            "problem": e.get("msg", ""),
        }
        for e in errors
    ]


UNAVAILABLE = "upstream_unavailable"


def unavailable(what: str, exc: BaseException) -> JSONResponse:
    """503 `upstream_unavailable`: a dependency (the app's own sidecar, the state store or pub/sub
    behind it, the Redis vector index) could not be reached. Transient by nature, and the gateway
    passes it on as 503, so a client knows to retry instead of reporting a bug (a 500/502)."""
    return JSONResponse(error_body(UNAVAILABLE, f"{what} is unavailable: {exc}"[:500]), status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    """Maps validation, HTTP and `ApiError` exceptions to the shared JSON error body, and a lost
    dependency (`DaprError`, a Redis connection or timeout error that outlived the client's
    retries) to 503 `upstream_unavailable` instead of an unhandled 500."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.detail), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("invalid_request", _field_errors(list(exc.errors()))), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body("http_error", exc.detail), status_code=exc.status_code)

    @app.exception_handler(DaprError)
    async def _dapr(_: Request, exc: DaprError) -> JSONResponse:
        if isinstance(exc, EtagMismatchError):
            # A write lost a first-write-wins race that no caller handled: the client may retry.
            return JSONResponse(error_body("conflict", str(exc)), status_code=409)
        return unavailable("the sidecar or a component behind it", exc)

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _redis(_: Request, exc: Exception) -> JSONResponse:
        return unavailable("the vector index (Redis)", exc)


def parse_body(raw: bytes, model: type[M], *, max_bytes: int) -> M:
    """Decodes a JSON request body with explicit, named failures.

    Raises:
        ApiError: 413 `too_large`, 400 `invalid_encoding` (not UTF-8), 400 `malformed_json`,
            or 422 `invalid_request` listing each offending field.
    """
    if len(raw) > max_bytes:
        raise ApiError(413, "too_large", f"body is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding", f"body is not UTF-8 (byte {exc.start})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    return validate(data, model)


def validate(data: Any, model: type[M]) -> M:
    """Validates decoded JSON against ``model``; raises a 422 `ApiError` naming each field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", _field_errors(list(exc.errors()))) from exc


class AppTokenMiddleware:
    """Refuses requests that do not carry the app API token the sidecar sends (`dapr-api-token`).

    With it, an app bound to a reachable port still only answers its own sidecar. Probe and scrape
    paths (`/healthz`, `/readyz`, `/metrics`) stay open.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        open_paths: frozenset[str] = frozenset({"/healthz", "/readyz", "/metrics"}),
    ) -> None:
        self._app = app
        self._token = token.encode()
        self._open = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open:
            await self._app(scope, receive, send)
            return
        presented = dict(scope["headers"]).get(b"dapr-api-token", b"")
        if not hmac.compare_digest(presented, self._token):
            response = JSONResponse(
                error_body(
                    "unauthorized", "missing or wrong dapr-api-token: only the sidecar may call this app"
                ),
                status_code=401,
            )
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)
