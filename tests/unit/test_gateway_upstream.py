"""How the gateway maps what came back through Dapr invocation."""

from __future__ import annotations

import httpx
import pytest

from lore_core.http import ApiError
from lore_gateway.services import _upstream


def test_callee_4xx_passes_through_with_its_error_code() -> None:
    response = httpx.Response(404, json={"error": "not_found", "detail": "no document"})
    with pytest.raises(ApiError) as caught:
        _upstream(response, "lore-ingest")
    assert (caught.value.status_code, caught.value.code) == (404, "not_found")


def test_dapr_invocation_error_becomes_503() -> None:
    response = httpx.Response(500, json={"errorCode": "ERR_DIRECT_INVOKE", "message": "connection refused"})
    with pytest.raises(ApiError) as caught:
        _upstream(response, "lore-query")
    assert caught.value.status_code == 503
    assert "lore-query" in caught.value.detail


def test_callee_own_5xx_becomes_502() -> None:
    with pytest.raises(ApiError) as caught:
        _upstream(httpx.Response(500, text="boom"), "lore-query")
    assert caught.value.status_code == 502


def test_callee_503_for_a_lost_dependency_stays_503() -> None:
    # lore-ingest answers 503 when its own sidecar or the state store is down
    # (lore_core.http.install_error_handlers): an outage to retry, not a bug (502).
    body = {"error": "upstream_unavailable", "detail": "the sidecar or a component behind it is unavailable"}
    with pytest.raises(ApiError) as caught:
        _upstream(httpx.Response(503, json=body), "lore-ingest")
    assert (caught.value.status_code, caught.value.code) == (503, "upstream_unavailable")
    assert "lore-ingest" in caught.value.detail and "sidecar" in caught.value.detail


def test_success_returns_the_body() -> None:
    assert _upstream(httpx.Response(200, json={"ok": True}), "lore-query") == {"ok": True}


def test_refusal_in_a_2xx_answer_becomes_its_public_status_and_error() -> None:
    refusal = {"outcome": "refused", "error": "not_found", "detail": "no document 'x'", "status": 404}
    with pytest.raises(ApiError) as caught:
        _upstream(httpx.Response(200, json=refusal), "lore-ingest")
    assert (caught.value.status_code, caught.value.code, caught.value.detail) == (
        404,
        "not_found",
        "no document 'x'",
    )


def test_success_body_with_an_error_field_is_not_a_refusal() -> None:
    failed = {"document_id": "d", "tenant": "default", "state": "failed", "error": "could not be queued"}
    assert _upstream(httpx.Response(200, json=failed), "lore-ingest") == failed
