"""Traces across the apps, the sidecars, the broker and Redis (`lore_core.telemetry`).

The apps export their spans to the session's OTLP collector (`tests.otlp`, the real exporter's
protobuf). Each test finds its own request's trace through a unique tenant in the span names and
attributes it can see, then checks what the trace holds.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from lore_stack.stack import Stack
from tests.integration.helpers import eventually, gateway_auth
from tests.otlp import OtlpCollector, ReceivedSpan

pytestmark = pytest.mark.integration


def _traceparent() -> tuple[str, dict[str, str]]:
    """A fresh trace id and the W3C header that starts the request in it (the gateway's server span
    continues an incoming context), so that spans of other requests can never be taken for ours."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return trace_id, {"traceparent": f"00-{trace_id}-{span_id}-01"}


def _spans(otlp: OtlpCollector, trace_id: str) -> list[ReceivedSpan]:
    return [s for s in list(otlp.spans) if s.trace_id == trace_id]


def test_an_ingestion_event_is_one_trace_from_publish_to_indexed(
    gateway: httpx.Client, otlp: OtlpCollector
) -> None:
    tenant = f"trace-{uuid.uuid4().hex[:8]}"
    trace_id, headers = _traceparent()
    document = {"id": "tides", "tenant": tenant, "text": "Spring tides follow the new and the full moon."}
    response = gateway.post("/v1/documents", params={"wait": "false"}, json=document, headers=headers)
    assert response.status_code == 202, response.text

    def indexed_in_trace() -> list[ReceivedSpan] | None:
        spans = _spans(otlp, trace_id)
        names = {(s.service, s.name) for s in spans}
        wanted = {
            ("lore-gateway", "POST /v1/documents"),
            ("lore-ingest", "embed chunks"),
            ("lore-ingest", "index write"),
        }
        return spans if wanted <= names else None

    # The subscriber's spans carry the publisher's trace id only if the W3C context crossed the
    # gRPC publish, the broker (inside the CloudEvent) and the delivery to lore-ingest.
    try:
        spans = eventually(indexed_in_trace, timeout=60)
    except AssertionError:
        names = sorted({(s.service, s.name) for s in _spans(otlp, trace_id)})
        elsewhere = sorted({s.name for s in list(otlp.spans) if s.service == "lore-ingest"})
        status = gateway.get(f"/v1/documents/{tenant}/tides").text
        detail = f"trace {trace_id} holds {names}; lore-ingest spans: {elsewhere}; status: {status}"
        raise AssertionError(detail) from None
    ingest = [s for s in spans if s.service == "lore-ingest"]
    assert any(s.name.startswith("/dapr.proto.runtime.v1.Dapr/PublishEvent") for s in ingest), {
        s.name for s in ingest
    }
    # Redis commands of the index write are spans of the same trace.
    by_id = {s.span_id: s for s in spans}
    write = next(s for s in ingest if s.name == "index write")
    redis_calls = [s for s in ingest if s.parent_span_id == write.span_id]
    assert redis_calls, f"no Redis span under the index write; spans: {sorted(by_id[i].name for i in by_id)}"

    # The embedding batch is a trace of its own (it serves many events), linked to this one.
    def batch() -> list[ReceivedSpan] | None:
        linked = [s for s in list(otlp.spans) if s.name == "embed batch" and trace_id in s.linked_traces]
        return linked or None

    assert eventually(batch, timeout=30)


def test_a_question_trace_holds_the_redis_search(gateway: httpx.Client, otlp: OtlpCollector) -> None:
    tenant = f"trace-{uuid.uuid4().hex[:8]}"
    document = {"id": "moon", "tenant": tenant, "text": "The moon raises the tides twice a day."}
    assert gateway.post("/v1/documents", json=document).status_code == 200
    trace_id, headers = _traceparent()
    question = {"question": "What raises the tides?", "tenant": tenant}
    response = gateway.post("/v1/answers", json=question, headers=headers)
    assert response.status_code == 200, response.text

    def searched() -> list[ReceivedSpan] | None:
        spans = [s for s in _spans(otlp, trace_id) if s.service == "lore-query"]
        # opentelemetry-instrumentation-redis names RediSearch queries `redis.search`.
        return spans if any(s.name == "redis.search" for s in spans) else None

    try:
        eventually(searched, timeout=30)
    except AssertionError:
        names = sorted({(s.service, s.name) for s in _spans(otlp, trace_id)})
        raise AssertionError(f"trace {trace_id} holds {names}") from None

    # The sidecars export their own spans to the same collector (the stack renders the
    # Configuration's `tracing.otel`): the invocation's hops are in the trace as well.
    def sidecars() -> set[str] | None:
        found = {s.service for s in _spans(otlp, trace_id) if s.language != "python"}
        return found if {"lore-gateway", "lore-query"} <= found else None

    try:
        eventually(sidecars, timeout=30)
    except AssertionError:
        spans = sorted({(s.service, s.language, s.name) for s in _spans(otlp, trace_id)})
        raise AssertionError(f"no daprd spans of both sidecars in trace {trace_id}: {spans}") from None


def test_a_large_request_leaves_no_trace_behind_on_its_connection(stack: Stack, otlp: OtlpCollector) -> None:
    """A body over uvicorn's 64 KiB flow-control mark used to leave its request's span as the
    current one for every later request on the same keep-alive connection (`lore_core.runtime.serve`)."""
    tenant = f"trace-{uuid.uuid4().hex[:8]}"
    # One client, one keep-alive connection to the gateway.
    with httpx.Client(base_url=stack.url("lore-gateway"), timeout=60, auth=gateway_auth(stack)) as client:
        big = {"id": "big", "tenant": tenant, "text": "tide " * 30_000, "colour": "blue"}
        assert client.post("/v1/documents", json=big).status_code == 422
        trace_id, headers = _traceparent()
        assert client.get(f"/v1/documents/{tenant}/big", headers=headers).status_code == 404

    def followed() -> set[tuple[str, str]] | None:
        names = {(s.service, s.name) for s in _spans(otlp, trace_id)}
        wanted = {
            ("lore-gateway", "GET /v1/documents/{tenant}/{document_id}"),
            ("lore-ingest", "GET /documents/{tenant}/{document_id}"),
        }
        return names if wanted <= names else None

    try:
        eventually(followed, timeout=30)
    except AssertionError:
        names = sorted({(s.service, s.name) for s in _spans(otlp, trace_id)})
        raise AssertionError(f"trace {trace_id} holds {names}") from None
