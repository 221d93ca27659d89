"""Ingestion events over Redis Streams, delivered by daprd to lore-ingest."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

import httpx
import pytest
from redis.commands.search.query import Query

from lore_stack.stack import Stack
from tests.integration.helpers import chunk_keys, eventually, redis_of, sidecar

pytestmark = pytest.mark.integration

TEXT = (
    "Glacier tier archives are restored within twelve hours. Restores of more than one terabyte "
    "are split into parallel jobs and may take up to two days."
)


def _status(stack: Stack, tenant: str, document_id: str, state: str) -> dict[str, Any] | None:
    response = httpx.get(f"{stack.url('lore-gateway')}/v1/documents/{tenant}/{document_id}", timeout=10)
    if response.status_code == 200 and response.json()["state"] == state:
        body: dict[str, Any] = response.json()
        return body
    return None


def _dead_letters(stack: Stack) -> list[dict[str, Any]]:
    letters = []
    entries = cast(
        list[tuple[bytes, dict[bytes, bytes]]], redis_of(stack).xrange("lore.documents.deadletter")
    )
    for _, fields in entries:
        event = json.loads(fields[b"data"])
        letters.append(event["data"])
    return letters


def test_published_event_is_indexed_by_ingest(stack: Stack) -> None:
    document_id = f"evt-{uuid.uuid4().hex[:8]}"
    with sidecar(stack, "lore-gateway") as dapr:
        response = dapr.post(
            "/v1.0/publish/pubsub/lore.documents",
            json={"id": document_id, "tenant": "events", "title": "Archive restores", "text": TEXT},
        )
    assert response.status_code == 204
    status = eventually(lambda: _status(stack, "events", document_id, "indexed"))
    assert status["chunks"] == len(chunk_keys(stack, "events", document_id)) >= 1


def test_gateway_enqueues_a_document_as_an_event(gateway: httpx.Client, stack: Stack) -> None:
    response = gateway.post(
        "/v1/documents",
        params={"wait": "false"},
        json={"tenant": "events", "title": "t", "text": TEXT + " queued"},
    )
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "accepted"
    eventually(lambda: _status(stack, "events", body["document_id"], "indexed"))


def test_redelivered_event_does_not_duplicate_chunks(stack: Stack) -> None:
    document_id = f"dup-{uuid.uuid4().hex[:8]}"
    event = {"id": document_id, "tenant": "events", "title": "Twice", "text": TEXT * 8}
    with sidecar(stack, "lore-gateway") as dapr:
        for _ in range(3):
            assert dapr.post("/v1.0/publish/pubsub/lore.documents", json=event).status_code == 204
    status = eventually(lambda: _status(stack, "events", document_id, "indexed"))
    # Let the other two deliveries land, then count what the index holds for this document.
    eventually(
        lambda: True if not redis_of(stack).xpending("lore.documents", "lore-ingest")["pending"] else None
    )
    keys = chunk_keys(stack, "events", document_id)
    assert len(keys) == status["chunks"]
    escaped = document_id.replace("-", "\\-")
    found = redis_of(stack).ft("lore-chunks").search(Query(f"@document_id:{{{escaped}}}").paging(0, 0))
    assert found.total == status["chunks"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"tenant": "events", "title": "no text"}, "text"),
        ({"tenant": "events", "text": "   "}, "document text is empty"),
        ({"tenant": "events", "text": "fine", "colour": "blue"}, "colour"),
        ("just a string", "invalid document"),
    ],
)
def test_invalid_event_is_dead_lettered_with_its_reason(stack: Stack, payload: object, reason: str) -> None:
    marker = uuid.uuid4().hex
    event = {**payload, "source": marker} if isinstance(payload, dict) else f"{payload} {marker}"
    with sidecar(stack, "lore-gateway") as dapr:
        assert dapr.post("/v1.0/publish/pubsub/lore.documents", json=event).status_code == 204

    def letter() -> dict[str, Any] | None:
        return next((x for x in _dead_letters(stack) if marker in json.dumps(x["event"])), None)

    found = eventually(letter)
    assert reason in found["reason"]
    assert found["topic"] == "lore.documents"
    # Dead-lettered, not retried forever: nothing of it is pending for the ingest consumer group.
    eventually(
        lambda: True if not redis_of(stack).xpending("lore.documents", "lore-ingest")["pending"] else None
    )


def test_oversized_event_is_dead_lettered_and_indexes_nothing(stack: Stack) -> None:
    document_id = f"big-{uuid.uuid4().hex[:8]}"
    with sidecar(stack, "lore-gateway") as dapr:
        response = dapr.post(
            "/v1.0/publish/pubsub/lore.documents",
            json={"id": document_id, "tenant": "events", "text": "x" * 512_001},
        )
    assert response.status_code == 204
    found = eventually(
        lambda: next(
            (
                x
                for x in _dead_letters(stack)
                if isinstance(x["event"], dict) and x["event"].get("id") == document_id
            ),
            None,
        )
    )
    assert "limit" in found["reason"]
    assert chunk_keys(stack, "events", document_id) == []
    status = _status(stack, "events", document_id, "failed")
    assert status is not None
    assert "limit" in status["error"]
