"""Service identity: sidecars talk over mTLS with certificates from Dapr's Sentry, and the
Configuration's access control lets only trusted app-ids invoke lore-query and lore-ingest.

A module-own stack lists one extra caller (`TRUSTED`, "another service of the user"), and one
(`ACL_ONLY`) that only the Dapr Configuration lists, not the apps' settings (a deployment whose two
lists drifted apart). Each test starts a bare client daprd (no app) with some app-id, with or
without mTLS, and invokes the stack's apps through it, as that service would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lore_core.callers import CALLER_HEADER, TENANT_HEADER
from lore_stack.stack import Stack
from tests.conftest import new_stack
from tests.integration.helpers import gateway_client
from tests.otlp import OtlpCollector

TRUSTED = "lore-tests-trusted"
STRANGER = "lore-tests-stranger"
ACL_ONLY = "lore-tests-acl-only"
QUERY = "lore-query"


@pytest.fixture(scope="module")
def acl_stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    lore = new_stack(tmp_path_factory, otlp, name="acl", trusted_app_ids=(TRUSTED, ACL_ONLY))
    lore.env["TRUSTED_APP_IDS"] = json.dumps([TRUSTED])
    try:
        lore.start(timeout=180)
        yield lore
    finally:
        lore.stop()


class ClientSidecar:
    """A daprd without an app (`Stack.guest_sidecar`), on the stack's configuration and name
    resolution, with or without mTLS."""

    def __init__(self, stack: Stack, app_id: str, run_dir: Path, *, mtls: bool) -> None:
        resources = run_dir / "resources"
        # No components: a caller needs none to invoke, and the committed scopes stay untouched.
        resources.mkdir(parents=True, exist_ok=True)
        self.daprd = stack.guest_sidecar(app_id, run_dir, resources, mtls=mtls)
        self.client = httpx.Client(
            base_url=self.daprd.url,
            headers={"dapr-api-token": stack.secrets["dapr-api-token"]},
            timeout=30,
        )

    def start(self) -> None:
        self.daprd.start()

    def invoke(
        self,
        app_id: str,
        method: str,
        *,
        http_method: str = "POST",
        json: object = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.client.request(
            http_method, f"/v1.0/invoke/{app_id}/method/{method}", json=json, headers=headers
        )

    def stop(self) -> None:
        self.client.close()
        self.daprd.stop()


Sidecars = Callable[..., ClientSidecar]


@pytest.fixture
def client_sidecar(acl_stack: Stack, tmp_path: Path) -> Iterator[Sidecars]:
    """Starts a client daprd: ``client_sidecar(app_id, mtls=True)``; stops it after the test."""
    started: list[ClientSidecar] = []

    def start(app_id: str, *, mtls: bool = True) -> ClientSidecar:
        sidecar = ClientSidecar(acl_stack, app_id, tmp_path / app_id, mtls=mtls)
        started.append(sidecar)
        sidecar.start()
        return sidecar

    yield start
    for sidecar in started:
        sidecar.stop()


def _retrieve_body(tenant: str) -> dict[str, object]:
    return {"question": "what is service identity?", "tenant": tenant, "top_k": 3}


def test_an_unlisted_app_id_is_refused_by_dapr_with_403(acl_stack: Stack, client_sidecar: Sidecars) -> None:
    stranger = client_sidecar(STRANGER)
    answer = stranger.invoke(QUERY, "retrieve", json=_retrieve_body("acl"))
    assert answer.status_code == 403, answer.text
    # Refused by lore-query's sidecar from the caller's certificate, before the app saw it.
    assert "access control policy has denied access" in answer.text
    assert f"/ns/default/{STRANGER}" in answer.text


def test_a_listed_app_id_may_invoke_lore_query(acl_stack: Stack, client_sidecar: Sidecars) -> None:
    trusted = client_sidecar(TRUSTED)
    answer = trusted.invoke(QUERY, "retrieve", json=_retrieve_body("acl"))
    assert answer.status_code == 200, answer.text
    assert "chunks" in answer.json()
    # With the tenant header naming the body's tenant, too.
    same = trusted.invoke(QUERY, "retrieve", json=_retrieve_body("acl"), headers={TENANT_HEADER: "acl"})
    assert same.status_code == 200 and "chunks" in same.json(), same.text


def test_a_listed_app_id_gets_only_the_listed_operations_and_verbs(
    acl_stack: Stack, client_sidecar: Sidecars
) -> None:
    trusted = client_sidecar(TRUSTED)
    # `/metrics` is a route of lore-query, but no policy lists it; `/retrieve` is POST only.
    assert trusted.invoke(QUERY, "metrics", http_method="GET").status_code == 403
    assert trusted.invoke(QUERY, "retrieve", http_method="GET").status_code == 403
    assert trusted.invoke(QUERY, "healthz", http_method="GET").status_code == 200


def test_a_listed_caller_cannot_claim_another_tenant_than_it_asks_for(
    acl_stack: Stack, client_sidecar: Sidecars
) -> None:
    trusted = client_sidecar(TRUSTED)
    # The header names one tenant, the body another: refused as a 200 `Refusal` (no breaker trip).
    mismatch = trusted.invoke(
        QUERY, "retrieve", json=_retrieve_body("victim"), headers={TENANT_HEADER: "acl"}
    )
    assert mismatch.status_code == 200, mismatch.text
    assert mismatch.json() == {
        "outcome": "refused",
        "error": "tenant_mismatch",
        "detail": f"the request names tenant 'victim', the {TENANT_HEADER} header 'acl'",
        "status": 403,
    }
    # lore-ingest applies the same rule (a status lookup names the tenant in its path).
    status = trusted.invoke(
        "lore-ingest", "documents/victim/some-doc", http_method="GET", headers={TENANT_HEADER: "acl"}
    )
    assert status.status_code == 200, status.text
    assert status.json()["error"] == "tenant_mismatch"
    # And so do its job and file routes (tenant in the path, the body, the query).
    header = {TENANT_HEADER: "acl"}
    job = {"tenant": "victim", "documents": [{"id": "d", "text": "Not yours."}]}
    calls = [
        trusted.invoke("lore-ingest", "jobs/victim", http_method="GET", headers=header),
        trusted.invoke("lore-ingest", f"jobs/victim/{uuid.uuid4().hex}", http_method="GET", headers=header),
        trusted.invoke(
            "lore-ingest", f"jobs/victim/{uuid.uuid4().hex}", http_method="DELETE", headers=header
        ),
        trusted.invoke("lore-ingest", "jobs", json=job, headers=header),
        trusted.client.post(
            "/v1.0/invoke/lore-ingest/method/files",
            params={"tenant": "victim", "filename": "note.txt"},
            content=b"Not yours either.",
            headers={**header, "content-type": "text/plain"},
        ),
    ]
    for answer in calls:
        assert answer.status_code == 200, answer.text
        assert answer.json()["error"] == "tenant_mismatch", (answer.request.url, answer.text)


def test_the_caller_app_id_header_is_set_by_the_sidecar_not_by_the_caller(
    acl_stack: Stack, client_sidecar: Sidecars
) -> None:
    # Past Dapr's access control, but not trusted by the app; naming itself lore-gateway does not
    # help: its sidecar replaces the header with its own app-id.
    acl_only = client_sidecar(ACL_ONLY)
    forged = acl_only.invoke(
        QUERY, "retrieve", json=_retrieve_body("acl"), headers={CALLER_HEADER: "lore-gateway"}
    )
    assert forged.status_code == 403, forged.text
    assert forged.json() == {
        "error": "forbidden_caller",
        "detail": f"app-id {ACL_ONLY!r} may not invoke /retrieve",
    }


def test_a_call_without_a_trusted_caller_app_id_is_refused_by_the_app(acl_stack: Stack) -> None:
    """A request that reaches lore-query without Dapr's invocation (holding the app API token)."""
    token = {"dapr-api-token": acl_stack.secrets["app-api-token"]}
    url = f"{acl_stack.url(QUERY)}/retrieve"
    anonymous = httpx.post(url, json=_retrieve_body("acl"), headers=token, timeout=30)
    assert anonymous.status_code == 403, anonymous.text
    assert anonymous.json() == {"error": "forbidden_caller", "detail": "no caller app-id"}
    stranger = httpx.post(
        url, json=_retrieve_body("acl"), headers={**token, CALLER_HEADER: STRANGER}, timeout=30
    )
    assert stranger.status_code == 403
    assert stranger.json()["error"] == "forbidden_caller"
    # lore-ingest's job and file routes check the caller too.
    ingest = acl_stack.url("lore-ingest")
    for method, path in (("GET", "/jobs/acl"), ("POST", "/files?tenant=acl&filename=a.txt")):
        answer = httpx.request(method, f"{ingest}{path}", content=b"text", headers=token, timeout=30)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"] == "forbidden_caller"


def test_a_sidecar_without_mtls_cannot_reach_the_others(acl_stack: Stack, client_sidecar: Sidecars) -> None:
    # Even with an app-id the access control lists: without a certificate there is no channel.
    plain = client_sidecar(TRUSTED, mtls=False)
    for app_id, method in ((QUERY, "healthz"), ("lore-ingest", "healthz")):
        answer = plain.invoke(app_id, method, http_method="GET")
        assert answer.status_code == 500, answer.text
        assert answer.json()["errorCode"] == "ERR_DIRECT_INVOKE", answer.text


def test_the_gateway_still_reaches_both_apps_and_names_the_tenant(acl_stack: Stack) -> None:
    tenant = f"acl-{uuid.uuid4().hex[:6]}"
    with gateway_client(acl_stack) as gateway:
        created = gateway.post(
            "/v1/documents",
            json={"tenant": tenant, "title": "Identity", "text": "Sentry signs each sidecar's certificate."},
        )
        assert created.status_code in (200, 201), created.text
        document_id = created.json()["document_id"]
        assert gateway.get(f"/v1/documents/{tenant}/{document_id}").status_code == 200
        found = gateway.post("/v1/retrieve", json={"question": "Who signs certificates?", "tenant": tenant})
        assert found.status_code == 200, found.text
        assert found.json()["chunks"][0]["document_id"] == document_id
