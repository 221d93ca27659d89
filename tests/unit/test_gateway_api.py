"""The gateway's public contract, in process (the Lore service object is swapped out)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from lore_core.contracts import (
    Answer,
    ChatCompletionIn,
    Citation,
    DocumentIn,
    DocumentState,
    DocumentStatus,
    QuestionIn,
)
from lore_gateway.auth import Principal, Role, authenticate
from lore_gateway.deps import get_lore
from lore_gateway.main import create_app
from lore_gateway.routes.v1 import _chat_question
from lore_gateway.settings import Settings


class RecordingLore:
    """Stands in for the service object; records what the routes hand it."""

    def __init__(self) -> None:
        self.documents: list[DocumentIn] = []
        self.questions: list[QuestionIn] = []

    async def ingest(self, document: DocumentIn) -> DocumentStatus:
        self.documents.append(document)
        return DocumentStatus(
            document_id=document.document_id(), tenant=document.tenant, state=DocumentState.INDEXED, chunks=1
        )

    async def enqueue(self, document: DocumentIn) -> DocumentStatus:
        self.documents.append(document)
        return DocumentStatus(
            document_id=document.document_id(), tenant=document.tenant, state=DocumentState.ACCEPTED
        )

    async def answer(self, question: QuestionIn) -> Answer:
        self.questions.append(question)
        citation = Citation(marker=1, document_id="d", title="T", source=None, chunk=0, score=0.9, text="x")
        return Answer(answer="x [1]", citations=[citation], mode="extractive")


@pytest.fixture
def app() -> FastAPI:
    return create_app(
        Settings(
            dapr_api_token=SecretStr("t1"),
            app_api_token=SecretStr("t2"),
            max_body_bytes=1000,
            max_document_bytes=100,
        )
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[tuple[TestClient, RecordingLore]]:
    lore = RecordingLore()
    app.dependency_overrides[get_lore] = lambda: lore
    # A writer of tenant `default` (keys themselves are tested in test_auth.py and integration).
    app.dependency_overrides[authenticate] = lambda: Principal(key_id="k", tenant="default", role=Role.WRITER)
    yield TestClient(app), lore  # no `with`: the lifespan (sidecar wait) is not entered


def test_document_is_validated_then_handed_to_ingest(client: tuple[TestClient, RecordingLore]) -> None:
    http, lore = client
    response = http.post("/v1/documents", json={"id": "a", "text": "hello"})
    assert response.status_code == 200
    assert response.json()["state"] == "indexed"
    assert [d.id for d in lore.documents] == ["a"]


def test_wait_false_enqueues_with_202(client: tuple[TestClient, RecordingLore]) -> None:
    http, _ = client
    response = http.post("/v1/documents?wait=false", json={"text": "hello"})
    assert response.status_code == 202
    assert response.json()["state"] == "accepted"


def test_refused_input_never_reaches_the_service(client: tuple[TestClient, RecordingLore]) -> None:
    http, lore = client
    assert http.post("/v1/documents", content=b"{oops").status_code == 400
    assert http.post("/v1/documents", content=b"x" * 1001).status_code == 413
    assert http.post("/v1/answers", json={"question": ""}).status_code == 422
    assert lore.documents == []
    assert lore.questions == []


def test_document_over_the_ingest_limit_is_413_before_ingest_is_invoked_or_queued(
    client: tuple[TestClient, RecordingLore],
) -> None:
    http, lore = client
    # 101 bytes of UTF-8 from 51 characters: the limit counts bytes, as lore-ingest does.
    response = http.post("/v1/documents", json={"id": "big", "text": "é" * 50 + "x"})
    assert response.status_code == 413
    assert response.json() == {"error": "too_large", "detail": "document text is 101 bytes; the limit is 100"}
    assert http.post("/v1/documents?wait=false", json={"text": "x" * 101}).status_code == 413
    assert http.post("/v1/documents", json={"id": "fits", "text": "é" * 50}).status_code == 200
    assert [d.id for d in lore.documents] == ["fits"]


def test_openapi_documents_the_request_bodies(app: FastAPI) -> None:
    spec = app.openapi()
    body = spec["paths"]["/v1/documents"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "text" in body["properties"]
    assert body["additionalProperties"] is False
    question = spec["paths"]["/v1/answers"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert question["required"] == ["question"]


def test_a_chat_request_becomes_a_question_with_its_earlier_turns() -> None:
    chat = ChatCompletionIn.model_validate(
        {
            "model": "lore",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "How long are deleted files kept?"},
                {"role": "assistant", "content": "30 days [1]."},
                {"role": "user", "content": "And then?"},
            ],
        }
    )
    question = _chat_question(chat, Principal(key_id="k", tenant="acme", role=Role.READER))
    assert question.question == "And then?"
    assert question.tenant == "acme"
    assert [(t.role, t.content) for t in question.history] == [
        ("user", "How long are deleted files kept?"),
        ("assistant", "30 days [1]."),
    ]
