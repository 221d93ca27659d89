"""Dapr API token (app -> sidecar) and app API token (sidecar -> app)."""

from __future__ import annotations

import httpx
import pytest

from lore_stack.stack import Stack
from tests.integration.helpers import sidecar

pytestmark = pytest.mark.integration


def test_sidecar_refuses_a_call_without_the_dapr_api_token(stack: Stack) -> None:
    url = stack.apps["lore-gateway"].http
    anonymous = httpx.post(
        f"{url}/v1.0/invoke/lore-query/method/answers", json={"question": "hi"}, timeout=10
    )
    wrong = httpx.get(f"{url}/v1.0/metadata", headers={"dapr-api-token": "not-the-token"}, timeout=10)
    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    with sidecar(stack, "lore-gateway") as dapr:
        assert dapr.get("/v1.0/metadata").status_code == 200


def test_app_refuses_a_call_that_did_not_come_from_its_sidecar(stack: Stack) -> None:
    url = stack.url("lore-query")
    direct = httpx.post(f"{url}/answers", json={"question": "hi"}, timeout=10)
    assert direct.status_code == 401
    assert direct.json()["error"] == "unauthorized"
    forged = httpx.post(
        f"{url}/answers", json={"question": "hi"}, headers={"dapr-api-token": "guess"}, timeout=10
    )
    assert forged.status_code == 401


def test_call_through_the_sidecar_carries_the_app_token(stack: Stack) -> None:
    with sidecar(stack, "lore-gateway") as dapr:
        response = dapr.post("/v1.0/invoke/lore-query/method/answers", json={"question": "anything"})
    assert response.status_code == 200
    assert "answer" in response.json()
