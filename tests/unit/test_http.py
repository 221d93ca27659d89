from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lore_core.contracts import DocumentIn
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
