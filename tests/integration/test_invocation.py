"""gateway -> lore-query through two sidecars, and what the gateway does when lore-query is down."""

from __future__ import annotations

import time

import httpx
import pytest

from lore_stack.stack import Stack
from tests.integration.helpers import eventually
from tests.otlp import OtlpCollector

pytestmark = pytest.mark.integration

DOC = {
    "id": "routing",
    "tenant": "invocation",
    "title": "Routing rules",
    "text": "Parcels heavier than 30 kilograms are routed through the Leipzig hub. "
    "Lighter parcels go through the nearest regional depot.",
}


def test_question_is_answered_by_query_through_the_sidecars(gateway: httpx.Client) -> None:
    assert gateway.post("/v1/documents", json=DOC).status_code == 200
    response = gateway.post(
        "/v1/answers", json={"question": "Where are heavy parcels routed?", "tenant": "invocation"}
    )
    assert response.status_code == 200
    body = response.json()
    assert "Leipzig" in body["answer"]
    assert body["citations"][0]["document_id"] == "routing"


def test_one_question_is_one_trace_across_gateway_and_query(
    gateway: httpx.Client, otlp: OtlpCollector
) -> None:
    response = gateway.post(
        "/v1/answers", json={"question": "Which hub handles heavy parcels?", "tenant": "invocation"}
    )
    assert response.status_code == 200

    def shared_trace() -> set[str] | None:
        gateway_traces = {
            s.trace_id for s in otlp.spans if s.service == "lore-gateway" and "answers" in s.name
        }
        query_traces = {s.trace_id for s in otlp.spans if s.service == "lore-query" and "answers" in s.name}
        return (gateway_traces & query_traces) or None

    assert eventually(shared_trace, timeout=15)


def test_query_down_gives_503_within_the_resiliency_timeout(gateway: httpx.Client, stack: Stack) -> None:
    stack.stop_app("lore-query")
    try:
        started = time.monotonic()
        response = gateway.post("/v1/answers", json={"question": "anything at all?"})
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.json()["error"] == "upstream_unavailable"
        assert "lore-query" in response.json()["detail"]
        assert elapsed < 20  # the `answer` timeout in dapr/resiliency.yaml
        ready = gateway.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["lore-query"] is False
    finally:
        stack.start_app("lore-query")
        stack.wait_app("lore-query", 120)
    eventually(lambda: True if gateway.get("/readyz").status_code == 200 else None, timeout=60)


def test_metrics_are_exposed(gateway: httpx.Client) -> None:
    gateway.get("/healthz")
    text = gateway.get("/metrics").text
    assert "lore_http_requests_total" in text
