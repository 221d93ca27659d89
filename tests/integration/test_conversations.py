"""Conversation memory on the real stack: follow-ups use the session's turns, kept per tenant in the
Dapr state store (`memorystore`), bounded and expiring."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from lore_query.settings import Settings as QuerySettings
from lore_stack.stack import Stack
from tests.integration.helpers import redis_of, sidecar

QUERY = "lore-query"
MAX_TURNS: int = QuerySettings.model_fields["memory_max_turns"].default
TTL: int = QuerySettings.model_fields["memory_ttl_seconds"].default
STORE: str = QuerySettings.model_fields["memory_store"].default
FIRST = "How long are deleted files kept in the recycle bin?"
FOLLOW_UP = "And what happens to them after that?"


@pytest.fixture(scope="module")
def tenant(gateway: httpx.Client) -> str:
    name = f"conv-{uuid.uuid4().hex[:8]}"
    added = gateway.post(
        "/v1/documents",
        json={
            "tenant": name,
            "id": "retention",
            "title": "Retention",
            "text": "Deleted files are kept in the recycle bin for 30 days. After 30 days they are "
            "purged permanently and cannot be restored.",
        },
    )
    assert added.status_code == 200, added.text
    return name


def _ask(gateway: httpx.Client, tenant: str, question: str, session: str | None, **extra: Any) -> Any:
    body: dict[str, Any] = {"tenant": tenant, "question": question, **extra}
    if session is not None:
        body["session_id"] = session
    answer = gateway.post("/v1/answers", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json() if not extra.get("stream") else {"sse": answer.text}


def _stored(stack: Stack, tenant: str, session: str) -> list[Any]:
    with sidecar(stack, QUERY) as dapr:
        got = dapr.get(f"/v1.0/state/{STORE}/session:{tenant}:{session}")
    return [] if got.status_code == 204 else list(got.json())


def test_a_follow_up_is_answered_with_the_sessions_first_question(
    stack: Stack, gateway: httpx.Client, tenant: str
) -> None:
    session = uuid.uuid4().hex
    first = _ask(gateway, tenant, FIRST, session)
    assert first["question"] == FIRST
    follow = _ask(gateway, tenant, FOLLOW_UP, session)
    # The extractive provider has no model to rewrite with: the previous question leads.
    assert follow["question"] == f"{FIRST} {FOLLOW_UP}"
    assert follow["citations"] and follow["citations"][0]["document_id"] == "retention"
    assert [m["type"] for m in _stored(stack, tenant, session)] == ["human", "ai", "human", "ai"]


def test_without_a_session_nothing_is_remembered(gateway: httpx.Client, tenant: str) -> None:
    answer = _ask(gateway, tenant, FOLLOW_UP, None)
    assert answer["question"] is None


def test_a_session_belongs_to_its_tenant(stack: Stack, gateway: httpx.Client, tenant: str) -> None:
    session = uuid.uuid4().hex
    _ask(gateway, tenant, FIRST, session)
    other = _ask(gateway, f"{tenant}-other", FOLLOW_UP, session)
    assert other["question"] == FOLLOW_UP  # no history in the other tenant
    assert len(_stored(stack, tenant, session)) == 2


def test_a_session_keeps_its_last_turns_and_expires(stack: Stack, gateway: httpx.Client, tenant: str) -> None:
    session = uuid.uuid4().hex
    for n in range(MAX_TURNS + 2):
        _ask(gateway, tenant, f"question number {n} about the recycle bin", session)
    stored = _stored(stack, tenant, session)
    assert len(stored) == 2 * MAX_TURNS
    assert stored[0]["data"]["content"] == "question number 2 about the recycle bin"
    ttl = redis_of(stack).ttl(f"{QUERY}||session:{tenant}:{session}")
    assert 0 < ttl <= TTL


def test_a_streamed_answer_is_remembered_too(stack: Stack, gateway: httpx.Client, tenant: str) -> None:
    session = uuid.uuid4().hex
    streamed = _ask(gateway, tenant, FIRST, session, stream=True)["sse"]
    assert "event: final" in streamed
    assert [m["type"] for m in _stored(stack, tenant, session)] == ["human", "ai"]
