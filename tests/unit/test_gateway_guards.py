"""The gateway's own guards, in process: oversized headers and callee answers off their contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from lore_core.contracts import DocumentStatus
from lore_gateway.auth import Principal, Role, authenticate
from lore_gateway.deps import get_lore
from lore_gateway.main import MAX_HEADER_BYTES, create_app
from lore_gateway.settings import Settings


class OffContractLore:
    """A callee whose 2xx answer is not the route's model (what the fuzzing found: a 2xx body that
    was not JSON, read as `{"error": "upstream_error", ...}`)."""

    async def status(self, tenant: str, document_id: str) -> DocumentStatus:
        return DocumentStatus.model_validate({"error": "upstream_error", "detail": "not JSON"})


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(Settings(dapr_api_token=SecretStr("t1"), app_api_token=SecretStr("t2")))
    app.dependency_overrides[get_lore] = OffContractLore
    app.dependency_overrides[authenticate] = lambda: Principal(key_id="k", tenant="default", role=Role.READER)
    # No `with`: the lifespan (which waits for a sidecar) is not entered.
    yield TestClient(app, raise_server_exceptions=False)


def test_a_callee_answer_off_its_contract_is_a_502_not_a_500(client: TestClient) -> None:
    answer = client.get("/v1/documents/default/doc")
    assert answer.status_code == 502
    assert answer.json()["error"] == "upstream_error"
    assert "DocumentStatus" in answer.json()["detail"]


def test_headers_over_the_limit_get_a_json_431(client: TestClient) -> None:
    answer = client.get("/v1/models", headers={"authorization": "Bearer " + "k" * MAX_HEADER_BYTES})
    assert answer.status_code == 431
    assert answer.json()["error"] == "headers_too_large"
    assert client.get("/v1/models", headers={"x-padding": "p" * (MAX_HEADER_BYTES // 2)}).status_code == 200
