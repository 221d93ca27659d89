"""The state store and the secret store, used through a real sidecar."""

from __future__ import annotations

import uuid

import pytest

from lore_core.dapr import EtagMismatchError, Sidecar
from lore_stack.stack import Stack
from tests.integration.helpers import sidecar

pytestmark = pytest.mark.integration


async def test_state_round_trip_detects_a_stale_etag(stack: Stack) -> None:
    ingest = stack.apps["lore-ingest"]
    client = Sidecar(
        ingest.http,
        stack.secrets["dapr-api-token"],
        grpc_address=f"127.0.0.1:{ingest.spec.dapr_grpc_port}",
    )
    key = f"test:{uuid.uuid4().hex}"
    try:
        await client.save_state("statestore", key, {"n": 1})
        value, etag = await client.get_state("statestore", key)
        assert value == {"n": 1}
        assert etag is not None

        await client.save_state("statestore", key, {"n": 2}, etag=etag)
        with pytest.raises(EtagMismatchError):
            await client.save_state("statestore", key, {"n": 3}, etag=etag)

        value, _ = await client.get_state("statestore", key)
        assert value == {"n": 2}
    finally:
        await client.delete_state("statestore", key)
        await client.aclose()


def test_secret_is_read_from_the_secret_store(stack: Stack) -> None:
    with sidecar(stack, "lore-query") as dapr:
        response = dapr.get("/v1.0/secrets/secretstore/redis-password")
    assert response.status_code == 200
    assert response.json() == {"redis-password": stack.secrets["redis-password"]}


def test_state_store_is_scoped_to_ingest(stack: Stack) -> None:
    with sidecar(stack, "lore-query") as dapr:
        response = dapr.get("/v1.0/state/statestore/anything")
    assert response.status_code >= 400
    assert "statestore" in response.text
