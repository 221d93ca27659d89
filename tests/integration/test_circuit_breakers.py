"""Refused and not-found calls do not open the gateway's circuit breakers (issue 8).

Dapr counts every invocation answer outside 200-399 as a failure, and `dapr/resiliency.yaml`
opens the breaker of a method path of lore-ingest after five in a row, for 15 s, for every client
of the gateway. Before the fix, five oversized documents made every synchronous ingestion answer
503, and five lookups of a missing document made that document unreachable even once added.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lore_stack.stack import Stack
from tests.integration.helpers import chunk_keys, sidecar

pytestmark = pytest.mark.integration

TENANT = "breakers"
CALLS = 100
# Under the gateway's body limit (4,000,000 bytes), over lore-ingest's document limit (512,000).
OVERSIZED = "a" * 650_000


def _refused(gateway: httpx.Client, kind: str, document_id: str) -> tuple[httpx.Response, int, str]:
    """One call that must be refused; returns the answer and the status and error it must carry."""
    if kind == "oversized":
        body = {"id": document_id, "tenant": TENANT, "text": OVERSIZED}
        return gateway.post("/v1/documents", json=body), 413, "too_large"
    if kind == "lookup":
        return gateway.get(f"/v1/documents/{TENANT}/{document_id}"), 404, "not_found"
    assert kind == "delete"
    return gateway.delete(f"/v1/documents/{TENANT}/{document_id}"), 404, "not_found"


@pytest.fixture(scope="module")
def existing(gateway: httpx.Client) -> str:
    body = {"id": "kept", "tenant": TENANT, "text": "Support answers tickets within one business day."}
    response = gateway.post("/v1/documents", json=body)
    assert response.status_code == 200, response.text
    return "kept"


@pytest.mark.parametrize(
    "kinds",
    [("oversized",), ("lookup",), ("delete",), ("oversized", "lookup", "delete")],
    ids=["oversized", "lookup", "delete", "mixed"],
)
def test_refused_calls_do_not_switch_ingestion_off_for_anyone(
    gateway: httpx.Client, stack: Stack, existing: str, kinds: tuple[str, ...]
) -> None:
    # The same id every time: Dapr keeps one breaker per method path, e.g. documents/{tenant}/{id}.
    absent = f"late-{'-'.join(kinds)}"
    for n in range(CALLS):
        kind = kinds[n % len(kinds)]
        response, status, error = _refused(gateway, kind, absent)
        assert response.status_code == status, f"call {n} ({kind}): {response.status_code} {response.text}"
        assert response.json().keys() == {"error", "detail"}
        assert response.json()["error"] == error
    assert chunk_keys(stack, TENANT, absent) == []

    # Right away, for everyone: ingestion, the document that was missing, and one that exists.
    added = gateway.post("/v1/documents", json={"id": absent, "tenant": TENANT, "text": "Added at last."})
    assert added.status_code == 200, added.text
    assert added.json()["state"] == "indexed"
    found = gateway.get(f"/v1/documents/{TENANT}/{absent}")
    assert found.status_code == 200, found.text
    assert found.json()["document_id"] == absent
    assert gateway.get(f"/v1/documents/{TENANT}/{existing}").status_code == 200
    deleted = gateway.delete(f"/v1/documents/{TENANT}/{absent}")
    assert deleted.status_code == 200, deleted.text


def test_ingest_answers_expected_outcomes_through_dapr_with_a_200_refusal(stack: Stack) -> None:
    """The internal contract any caller in any language sees, without the gateway's validation."""
    refused: list[tuple[str, str, Any, int, str]] = [
        ("POST", "documents", {"tenant": TENANT, "text": OVERSIZED}, 413, "too_large"),
        ("GET", f"documents/{TENANT}/nowhere", None, 404, "not_found"),
        ("DELETE", f"documents/{TENANT}/nowhere", None, 404, "not_found"),
        ("POST", "documents", {"tenant": TENANT, "text": ""}, 422, "invalid_request"),
    ]
    with sidecar(stack, "lore-gateway") as dapr:
        for n in range(CALLS):
            verb, method, body, status, error = refused[n % len(refused)]
            response = dapr.request(verb, f"/v1.0/invoke/lore-ingest/method/{method}", json=body)
            assert response.status_code == 200, f"call {n} ({verb} {method}): {response.text}"
            assert response.json() == {
                "outcome": "refused",
                "error": error,
                "detail": response.json()["detail"],
                "status": status,
            }
        document = {"id": "direct", "tenant": TENANT, "text": "Invoked directly through Dapr."}
        indexed = dapr.post("/v1.0/invoke/lore-ingest/method/documents", json=document)
        assert indexed.status_code == 200, indexed.text
        assert indexed.json()["state"] == "indexed"
        assert "outcome" not in indexed.json()
