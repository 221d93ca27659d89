"""Redis restarts: nothing acknowledged is lost, and every app and sidecar reconnects by itself."""

from __future__ import annotations

import httpx
import pytest

from lore_stack.stack import Stack
from tests.integration.helpers import chunk_keys, eventually

pytestmark = pytest.mark.integration

DOC = {
    "id": "durable",
    "tenant": "restart",
    "title": "Durability",
    "text": "Invoices are archived for ten years. Receipts older than ten years are shredded every January.",
}


def _answered(gateway: httpx.Client) -> dict[str, object] | None:
    response = gateway.post(
        "/v1/answers", json={"question": "How long are invoices archived?", "tenant": "restart"}
    )
    body: dict[str, object] = response.json()
    return body if response.status_code == 200 and body["citations"] else None


def test_acknowledged_document_survives_a_redis_crash_and_apps_reconnect(
    gateway: httpx.Client, stack: Stack
) -> None:
    assert stack.redis is not None
    assert gateway.post("/v1/documents", json=DOC).status_code == 200
    keys = chunk_keys(stack, "restart", "durable")
    assert keys

    stack.redis.kill()  # SIGKILL: no shutdown save, only the append-only file remains
    stack.redis.start()

    assert chunk_keys(stack, "restart", "durable") == keys
    # The first calls after the restart may fail while connections are re-established; the direct
    # Redis client retries, the sidecars reconnect on their own.
    answer = eventually(lambda: _answered(gateway), timeout=30, interval=0.5)
    assert "ten years" in str(answer["answer"])
    status = gateway.get("/v1/documents/restart/durable")
    assert status.status_code == 200
    assert status.json()["state"] == "indexed"
    updated = {**DOC, "text": DOC["text"] + " Contracts are kept for twelve years."}
    assert eventually(
        lambda: True if gateway.post("/v1/documents", json=updated).status_code == 200 else None, timeout=30
    )
