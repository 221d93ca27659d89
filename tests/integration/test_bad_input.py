"""Bad input gets a 4xx with a JSON body naming the problem, and writes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from lore_stack.stack import Stack
from tests.integration.helpers import chunk_keys

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("body", "status", "error", "mentions"),
    [
        (b'{"text": "unterminated', 400, "malformed_json", "line 1"),
        (b'{"text": "caf\xe9"}', 400, "invalid_encoding", "UTF-8"),
        (b'{"id": "bad-1", "text": "hello", "colour": "blue"}', 422, "invalid_request", "colour"),
        (b'{"id": "bad-2", "text": ""}', 422, "invalid_request", "document text is empty"),
        (b'{"id": "bad-3"}', 422, "invalid_request", "text"),
        (b'{"id": "../etc", "text": "x"}', 422, "invalid_request", "id"),
        (b"[1, 2]", 422, "invalid_request", "body"),
    ],
)
def test_bad_document_is_refused_with_a_named_problem(
    gateway: httpx.Client, stack: Stack, body: bytes, status: int, error: str, mentions: str
) -> None:
    response = gateway.post("/v1/documents", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert mentions in str(response.json()["detail"])
    for document_id in ("bad-1", "bad-2", "bad-3"):
        assert chunk_keys(stack, "default", document_id) == []


def test_body_over_the_gateway_limit_is_413(gateway: httpx.Client) -> None:
    response = gateway.post("/v1/documents", json={"id": "huge", "text": "a" * 4_000_001})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert "body is" in response.json()["detail"]


def test_document_over_the_ingest_limit_is_413_and_not_indexed(gateway: httpx.Client, stack: Stack) -> None:
    # Under the gateway's body limit, over lore-ingest's document limit (512,000 bytes of UTF-8).
    body = json.dumps({"id": "big-sync", "text": "é" * 256_001}, ensure_ascii=False).encode()
    response = gateway.post("/v1/documents", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert "document text is 512002 bytes" in response.json()["detail"]
    assert chunk_keys(stack, "default", "big-sync") == []


def test_bad_question_is_refused(gateway: httpx.Client) -> None:
    response = gateway.post("/v1/answers", json={"question": "ok", "top_k": 500})
    assert response.status_code == 422
    assert "top_k" in str(response.json()["detail"])
