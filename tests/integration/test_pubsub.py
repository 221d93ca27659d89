"""Ingestion events over Redis Streams, delivered by daprd to lore-ingest."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

import httpx
import pytest
from redis.commands.search.query import Query

from lore_stack.stack import Stack
from tests.integration.helpers import (
    INDEX_NAME,
    TOPICS,
    chunk_keys,
    drained,
    eventually,
    gateway_auth,
    manifest,
    metric,
    pending,
    redis_of,
    sidecar,
)

pytestmark = pytest.mark.integration

PUBLISH = f"/v1.0/publish/{TOPICS.pubsub}/{TOPICS.ingest_topic}"

TEXT = (
    "Glacier tier archives are restored within twelve hours. Restores of more than one terabyte "
    "are split into parallel jobs and may take up to two days."
)


def _status(stack: Stack, tenant: str, document_id: str, state: str) -> dict[str, Any] | None:
    response = httpx.get(
        f"{stack.url('lore-gateway')}/v1/documents/{tenant}/{document_id}",
        timeout=10,
        auth=gateway_auth(stack),
    )
    if response.status_code == 200 and response.json()["state"] == state:
        body: dict[str, Any] = response.json()
        return body
    return None


def _dead_letters(stack: Stack) -> list[dict[str, Any]]:
    letters = []
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_of(stack).xrange(TOPICS.dead_letter_topic))
    for _, fields in entries:
        event = json.loads(fields[b"data"])
        letters.append(event["data"])
    return letters


def test_published_event_is_indexed_by_ingest(stack: Stack) -> None:
    document_id = f"evt-{uuid.uuid4().hex[:8]}"
    with sidecar(stack, "lore-ingest") as dapr:
        response = dapr.post(
            PUBLISH,
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


def test_redelivered_event_does_not_duplicate_chunks_nor_embed_again(stack: Stack) -> None:
    document_id = f"dup-{uuid.uuid4().hex[:8]}"
    event = {"id": document_id, "tenant": "events", "title": "Twice", "text": TEXT * 8}
    ingest = stack.url("lore-ingest")
    with sidecar(stack, "lore-ingest") as dapr:
        assert dapr.post(PUBLISH, json=event).status_code == 204
        first = eventually(lambda: _status(stack, "events", document_id, "indexed"))
        eventually(lambda: True if not pending(stack) else None)
        embedded = metric(ingest, "lore_chunks_embedded_total")
        for _ in range(2):
            assert dapr.post(PUBLISH, json=event).status_code == 204
    eventually(lambda: True if drained(stack) else None)
    # The redeliveries cost a state read each: no embedding, no index write, no status write.
    assert metric(ingest, "lore_chunks_embedded_total") == embedded
    assert manifest(stack, "events", document_id)["writes"] == "1"
    status = _status(stack, "events", document_id, "indexed")
    assert status is not None
    assert status["updated_at"] == first["updated_at"]
    keys = chunk_keys(stack, "events", document_id)
    assert len(keys) == status["chunks"]
    escaped = document_id.replace("-", "\\-")
    found = redis_of(stack).ft(INDEX_NAME).search(Query(f"@document_id:{{{escaped}}}").paging(0, 0))
    assert found.total == status["chunks"]


def test_changed_title_is_a_new_version(gateway: httpx.Client, stack: Stack) -> None:
    document_id = f"ver-{uuid.uuid4().hex[:8]}"
    body = {"id": document_id, "tenant": "events", "title": "First title", "text": TEXT}
    assert gateway.post("/v1/documents", json=body).status_code == 200
    second = gateway.post("/v1/documents", json={**body, "title": "Second title"})
    assert second.status_code == 200
    assert second.json()["sequence"] == 2
    stored = redis_of(stack).hget(chunk_keys(stack, "events", document_id)[0], "title")
    assert stored == b"Second title"
    assert manifest(stack, "events", document_id)["writes"] == "2"


def test_accepted_status_is_visible_right_after_the_202(gateway: httpx.Client, stack: Stack) -> None:
    document_id = f"acc-{uuid.uuid4().hex[:8]}"
    response = gateway.post(
        "/v1/documents",
        params={"wait": "false"},
        json={"id": document_id, "tenant": "events", "text": TEXT + " accepted"},
    )
    assert response.status_code == 202
    lookup = gateway.get(f"/v1/documents/events/{document_id}")
    assert lookup.status_code == 200
    assert lookup.json()["state"] in {"accepted", "processing", "indexed"}
    final = eventually(lambda: _status(stack, "events", document_id, "indexed"))
    assert final["sequence"] == response.json()["sequence"]


def test_stale_event_does_not_overwrite_a_newer_version(gateway: httpx.Client, stack: Stack) -> None:
    document_id = f"old-{uuid.uuid4().hex[:8]}"
    newer = {"id": document_id, "tenant": "events", "title": "v2", "text": TEXT + " Version two."}
    gateway.post("/v1/documents", json={**newer, "text": TEXT, "title": "v1"})
    assert gateway.post("/v1/documents", json=newer).json()["sequence"] == 2
    # A late delivery of version 1 (sequence 1) arrives after version 2 was indexed.
    stale = {"id": document_id, "tenant": "events", "title": "v1", "text": TEXT, "sequence": 1}
    ingest = stack.url("lore-ingest")
    before = metric(ingest, "lore_ingest_documents_total", 'outcome="stale"')
    with sidecar(stack, "lore-ingest") as dapr:
        assert dapr.post(PUBLISH, json=stale).status_code == 204
    eventually(lambda: metric(ingest, "lore_ingest_documents_total", 'outcome="stale"') > before or None)
    status = _status(stack, "events", document_id, "indexed")
    assert status is not None
    assert (status["title"], status["sequence"]) == ("v2", 2)
    assert redis_of(stack).hget(chunk_keys(stack, "events", document_id)[0], "title") == b"v2"


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
    with sidecar(stack, "lore-ingest") as dapr:
        assert dapr.post(PUBLISH, json=event).status_code == 204

    def letter() -> dict[str, Any] | None:
        return next((x for x in _dead_letters(stack) if marker in json.dumps(x["event"])), None)

    found = eventually(letter)
    assert reason in found["reason"]
    assert found["topic"] == TOPICS.ingest_topic
    # Dead-lettered, not retried forever: nothing of it is pending for the ingest consumer group.
    eventually(lambda: True if not pending(stack) else None)


def test_oversized_event_is_dead_lettered_and_indexes_nothing(stack: Stack) -> None:
    document_id = f"big-{uuid.uuid4().hex[:8]}"
    with sidecar(stack, "lore-ingest") as dapr:
        response = dapr.post(
            PUBLISH,
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
