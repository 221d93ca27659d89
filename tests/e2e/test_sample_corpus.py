"""The `make run` journey: ingest the sample corpus through the gateway, ask, get the citation."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from lore_stack import demo
from lore_stack.__main__ import SAMPLE_QUESTION
from lore_stack.stack import Stack

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).resolve().parents[2] / "samples" / "corpus"


def test_sample_question_is_answered_with_the_retention_citation(stack: Stack, gateway: httpx.Client) -> None:
    url = stack.url("lore-gateway")
    statuses = demo.ingest_corpus(url, CORPUS, stack.secrets["lore-admin-key"])
    assert {s["document_id"] for s in statuses} == {"retention", "support", "security"}
    assert all(s["state"] == "indexed" and s["chunks"] >= 1 for s in statuses)

    answer = demo.ask(url, SAMPLE_QUESTION, stack.secrets["lore-admin-key"])
    assert answer["citations"], answer
    assert answer["citations"][0]["document_id"] == "retention"
    assert "30 days" in answer["answer"]
    assert "[1]" in answer["answer"]

    status = gateway.get("/v1/documents/default/retention")
    assert status.status_code == 200
    assert status.json()["state"] == "indexed"

    # `make run` asks the same question streamed: the tokens written add up to the final answer.
    out = io.StringIO()
    streamed = demo.ask_streamed(url, SAMPLE_QUESTION, stack.secrets["lore-admin-key"], out)
    assert out.getvalue() == streamed["answer"]
    assert streamed["citations"][0]["document_id"] == "retention"
    assert "Citations:\n  [1] " in demo.render_citations(streamed)


def test_reingesting_the_corpus_changes_nothing(stack: Stack) -> None:
    url = stack.url("lore-gateway")
    first = demo.ingest_corpus(url, CORPUS, stack.secrets["lore-admin-key"])
    second = demo.ingest_corpus(url, CORPUS, stack.secrets["lore-admin-key"])
    assert [s["chunks"] for s in first] == [s["chunks"] for s in second]


def test_unknown_document_is_404(gateway: httpx.Client) -> None:
    response = gateway.get("/v1/documents/default/never-seen")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_deleted_document_is_no_longer_cited(gateway: httpx.Client) -> None:
    text = "The Oslo office closes at 16:00 on Fridays during summer."
    assert (
        gateway.post("/v1/documents", json={"id": "oslo", "tenant": "deletion", "text": text}).status_code
        == 200
    )
    question = {"question": "When does the Oslo office close on Fridays?", "tenant": "deletion"}
    assert gateway.post("/v1/answers", json=question).json()["citations"][0]["document_id"] == "oslo"

    deleted = gateway.delete("/v1/documents/deletion/oslo")
    assert deleted.status_code == 200
    assert deleted.json()["chunks_removed"] == 1
    assert gateway.post("/v1/answers", json=question).json()["citations"] == []
    assert gateway.get("/v1/documents/deletion/oslo").status_code == 404
    assert gateway.delete("/v1/documents/deletion/oslo").status_code == 404
