"""The `local` answer provider end to end: the stack starts the real llama.cpp server
(llama-cpp-python[server], SmolLM2-135M-Instruct; `make llm` installs both) and lore-query reaches it
only through its sidecar, as the `lore-llm` HTTPEndpoint the stack points at it.

Nothing is a stand-in: real daprd sidecars, Redis, the apps, the model server and the model. The
model is tiny and its wording is not asserted; what is asserted is that it ran (tokens streamed
and counted, the server's usage reaching the metrics) and that the answer is built around it (the
citations come from retrieval). Answers are capped at a few tokens to keep the module quick.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lore_stack.llm_server import MODEL_ALIAS
from lore_stack.stack import Stack, free_port
from tests.conftest import new_stack
from tests.integration.helpers import gateway_client, metric
from tests.otlp import OtlpCollector

pytestmark = pytest.mark.integration

TENANT = "local-llm"
MAX_TOKENS = 16
DOC = {
    "id": "retention",
    "tenant": TENANT,
    "title": "Data retention",
    "text": "Deleted files are kept in the recycle bin for 30 days. After 30 days they are purged.",
}
QUESTION = {"question": "How long are deleted files kept in the recycle bin?", "tenant": TENANT}
COMPLETION, PROMPT = 'kind="completion"', 'kind="prompt"'


@pytest.fixture(scope="module")
def lore(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    stack = new_stack(tmp_path_factory, otlp, name="local-llm")
    stack.llm_port = free_port()
    stack.env.update({"ANSWER_PROVIDER": "local", "LLM_MAX_TOKENS": str(MAX_TOKENS)})
    try:
        stack.start(timeout=240)
        with gateway_client(stack) as gateway:
            response = gateway.post("/v1/documents", json=DOC)
            assert response.status_code == 200, response.text
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def gateway(lore: Stack) -> Iterator[httpx.Client]:
    with gateway_client(lore, timeout=120) as client:
        yield client


def _tokens(lore: Stack, kind: str) -> float:
    return metric(lore.url("lore-query"), "lore_llm_tokens_total", kind)


def _first_token_count(lore: Stack) -> float:
    return metric(lore.url("lore-query"), "lore_llm_time_to_first_token_seconds_count")


def _events(client: httpx.Client, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events = []
    with client.stream("POST", "/v1/answers", json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


def test_the_stack_serves_the_model_on_the_endpoint_lore_query_calls(lore: Stack) -> None:
    assert lore.llm is not None and lore.llm.running()
    models = httpx.get(f"{lore.llm.base_url}/v1/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [MODEL_ALIAS]
    rendered = "".join(p.read_text() for p in lore.resources_dir.glob("*.yaml"))
    assert f"baseUrl: {lore.llm.base_url}" in rendered


def test_a_streamed_answer_comes_token_by_token_from_the_model_with_citations(
    lore: Stack, gateway: httpx.Client
) -> None:
    completion, first_tokens = _tokens(lore, COMPLETION), _first_token_count(lore)
    events = _events(gateway, QUESTION)
    names = [name for name, _ in events]
    tokens = [data["text"] for name, data in events if name == "token"]
    # The model streamed: several tokens, not one piece (what the extractive provider sends).
    assert len(tokens) > 1, events
    assert names[-2:] == ["citations", "final"], names
    final = events[-1][1]
    assert final["mode"] == "generative" and not final.get("degraded"), final
    assert final["answer"].strip()
    assert [c["document_id"] for c in events[-2][1]["citations"]] == ["retention"]
    # llama.cpp streams one chunk per token and no usage: each chunk counts as a completion token,
    # and LLM_MAX_TOKENS reached the server (it ignores `max_completion_tokens`).
    counted = _tokens(lore, COMPLETION) - completion
    assert counted == len(tokens)
    assert counted <= MAX_TOKENS
    assert _first_token_count(lore) - first_tokens == 1


def test_a_unary_answer_counts_the_usage_the_server_reports(lore: Stack, gateway: httpx.Client) -> None:
    prompt, completion = _tokens(lore, PROMPT), _tokens(lore, COMPLETION)
    response = gateway.post("/v1/answers", json=QUESTION)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["mode"] == "generative" and not answer.get("degraded"), answer
    # The prompt (system instructions, the numbered chunk, the question) is well over 50 tokens.
    assert _tokens(lore, PROMPT) - prompt > 50
    assert 0 < _tokens(lore, COMPLETION) - completion <= MAX_TOKENS


def test_without_the_model_server_the_answer_degrades_and_recovers_when_it_is_back(
    lore: Stack, gateway: httpx.Client
) -> None:
    assert lore.llm is not None
    lore.llm.stop()
    try:
        response = gateway.post("/v1/answers", json=QUESTION)
        assert response.status_code == 200, response.text
        down = response.json()
        assert down["degraded"] is True and down["mode"] == "extractive", down
    finally:
        lore.llm.start()
    back = gateway.post("/v1/answers", json=QUESTION).json()
    assert back["mode"] == "generative" and not back.get("degraded"), back
