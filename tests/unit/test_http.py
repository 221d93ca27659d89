from __future__ import annotations

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lore_core.contracts import DocumentIn
from lore_core.dapr import DaprError, EtagMismatchError
from lore_core.http import ApiError, AppTokenMiddleware, install_error_handlers, parse_body


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"x" * 101, 413, "too_large"),
        (b'{"text": "\xff"}', 400, "invalid_encoding"),
        (b'{"text": ', 400, "malformed_json"),
        (b'{"text": "ok", "extra": true}', 422, "invalid_request"),
    ],
)
def test_parse_body_names_each_failure(raw: bytes, status: int, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_body(raw, DocumentIn, max_bytes=100)
    assert (caught.value.status_code, caught.value.code) == (status, code)


def test_parse_body_lists_the_offending_fields() -> None:
    with pytest.raises(ApiError) as caught:
        parse_body(b'{"text": "ok", "colour": "red", "tenant": "BAD"}', DocumentIn, max_bytes=1000)
    fields = {e["field"] for e in caught.value.detail}
    assert fields == {"colour", "tenant"}


def test_parse_body_accepts_a_valid_document() -> None:
    assert parse_body('{"text": "café"}'.encode(), DocumentIn, max_bytes=1000).text == "café"


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/private")
    def private() -> dict[str, str]:
        return {"secret": "value"}

    app.add_middleware(AppTokenMiddleware, token="s3cret")
    return app


def test_app_token_is_required_except_on_probe_paths() -> None:
    client = TestClient(_app())
    assert client.get("/healthz").status_code == 200
    refused = client.get("/private")
    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"
    assert client.get("/private", headers={"dapr-api-token": "wrong"}).status_code == 401
    assert client.get("/private", headers={"dapr-api-token": "s3cret"}).json() == {"secret": "value"}


def test_unknown_route_gets_the_json_error_body() -> None:
    response = TestClient(_app()).get("/nope", headers={"dapr-api-token": "s3cret"})
    assert response.status_code == 404
    assert response.json() == {"error": "http_error", "detail": "Not Found"}


def _failing(exc: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fail")
    async def fail() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "exc",
    [
        DaprError("get state statestore/k failed: UNAVAILABLE: connection refused"),
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
    ],
    ids=["sidecar", "redis-connection", "redis-timeout"],
)
def test_a_lost_dependency_is_answered_503_not_500(exc: Exception) -> None:
    response = _failing(exc).get("/fail")
    assert response.status_code == 503
    assert response.json()["error"] == "upstream_unavailable"
    assert str(exc) in response.json()["detail"]


def test_an_unhandled_etag_mismatch_is_a_409_conflict() -> None:
    response = _failing(EtagMismatchError("etag mismatch on statestore/k", status_code=409)).get("/fail")
    assert (response.status_code, response.json()["error"]) == (409, "conflict")


def test_other_errors_stay_500() -> None:
    assert _failing(RuntimeError("bug")).get("/fail").status_code == 500
