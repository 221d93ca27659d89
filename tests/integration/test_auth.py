"""API keys, tenants from credentials and shared rate limits, on a real stack (auth required).

The module runs its own stack with `AUTH_REQUIRED=true`; keys are made through the API with the
operator key of the stack's secret store, as an operator would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from lore_stack.stack import Stack, free_port
from tests.conftest import new_stack
from tests.otlp import OtlpCollector

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "lore-gateway"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    lore = new_stack(tmp_path_factory, otlp, name="auth-stack")
    lore.env["AUTH_REQUIRED"] = "true"
    lore.env["RATE_LIMIT"] = "1000/minute"
    try:
        lore.start(timeout=180)
        yield lore
    finally:
        lore.stop()


@pytest.fixture(scope="module")
def anonymous(secured: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.url(GATEWAY), timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def operator(secured: Stack) -> Iterator[httpx.Client]:
    key = secured.secrets["lore-admin-key"]
    with httpx.Client(
        base_url=secured.url(GATEWAY), timeout=60, headers={"authorization": f"Bearer {key}"}
    ) as client:
        yield client


# Every key this module makes, so the last test can check that none reached a log.
USED_KEYS: list[str] = []


def _key(operator: httpx.Client, tenant: str, role: str) -> str:
    made = operator.post("/v1/keys", json={"tenant": tenant, "role": role, "name": f"{tenant}-{role}"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["tenant"] == tenant and body["role"] == role
    USED_KEYS.append(str(body["key"]))
    return str(body["key"])


def _client(stack: Stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.url(GATEWAY), timeout=60, headers={"authorization": f"Bearer {key}"})


@pytest.fixture(scope="module")
def tenants(secured: Stack, operator: httpx.Client) -> Iterator[dict[str, httpx.Client]]:
    """Writers of tenants `alpha` and `beta`, a reader of `alpha`, and an admin of `alpha`; `alpha`
    holds one document."""
    clients = {
        "alpha": _client(secured, _key(operator, "alpha", "writer")),
        "beta": _client(secured, _key(operator, "beta", "writer")),
        "alpha-reader": _client(secured, _key(operator, "alpha", "reader")),
        "alpha-admin": _client(secured, _key(operator, "alpha", "admin")),
    }
    added = clients["alpha"].post(
        "/v1/documents",
        json={"id": "secret-plan", "title": "Plan", "text": "The alpha launch code is Zephyr-7731."},
    )
    assert added.status_code == 200, added.text
    assert added.json()["tenant"] == "alpha"
    yield clients
    for client in clients.values():
        client.close()


def _routes(client: httpx.Client) -> list[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method in item
    ]


def test_every_v1_route_refuses_a_call_without_a_valid_key(anonymous: httpx.Client) -> None:
    routes = _routes(anonymous)
    assert len(routes) >= 8
    for method, path in routes:
        url = path.replace("{tenant}", "alpha").replace("{document_id}", "x").replace("{key_id}", "x")
        url = url.replace("{job_id}", "x")
        for headers in (
            {},
            {"authorization": "Bearer lore_0123456789abcdef_" + "x" * 43},
            {"authorization": "Basic a"},
        ):
            answer = anonymous.request(method, url, json={}, headers=headers)
            assert answer.status_code == 401, (method, url, headers, answer.text)
            assert answer.json()["error"] == "unauthenticated"
            assert answer.headers["www-authenticate"] == "Bearer"


def test_the_tenant_comes_from_the_key(tenants: dict[str, httpx.Client]) -> None:
    beta = tenants["beta"]
    added = beta.post("/v1/documents", json={"id": "beta-doc", "text": "Beta keeps its own notes on Zephyr."})
    assert added.json()["tenant"] == "beta"
    found = beta.post("/v1/retrieve", json={"question": "launch code Zephyr", "top_k": 10, "mode": "text"})
    assert found.status_code == 200, found.text
    chunks = found.json()["chunks"]
    assert chunks and {c["document_id"] for c in chunks} == {"beta-doc"}
    mine = tenants["alpha"].post("/v1/retrieve", json={"question": "launch code Zephyr", "mode": "text"})
    assert {c["document_id"] for c in mine.json()["chunks"]} == {"secret-plan"}


HOSTILE = [
    "alpha",
    "ALPHA",
    "alpha ",
    "alpha|beta",
    "*",
    "alpha\x00",
    "al\\pha",
    "{alpha}",
    "-alpha",
    "ålpha",
]


@pytest.mark.parametrize("tenant", HOSTILE)
def test_another_tenant_is_never_read_nor_written(tenants: dict[str, httpx.Client], tenant: str) -> None:
    beta = tenants["beta"]
    in_path = quote(tenant, safe="")
    chat = {
        "model": "lore",
        "messages": [{"role": "user", "content": "launch code?"}],
        "lore": {"tenant": tenant},
    }
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/documents", {"tenant": tenant, "id": "intruder", "text": "overwrite"}),
        ("POST", "/v1/documents?wait=false", {"tenant": tenant, "id": "intruder", "text": "overwrite"}),
        ("POST", "/v1/retrieve", {"tenant": tenant, "question": "launch code Zephyr"}),
        ("POST", "/v1/answers", {"tenant": tenant, "question": "What is the launch code?"}),
        ("POST", "/v1/chat/completions", chat),
        ("GET", f"/v1/documents/{in_path}/secret-plan", None),
        ("DELETE", f"/v1/documents/{in_path}/secret-plan", None),
        ("GET", f"/v1/keys?tenant={in_path}", None),
        ("POST", "/v1/jobs", {"tenant": tenant, "documents": [{"id": "intruder", "text": "overwrite"}]}),
        ("POST", "/v1/jobs", {"documents": [{"tenant": tenant, "id": "intruder", "text": "overwrite"}]}),
        ("GET", f"/v1/jobs?tenant={in_path}", None),
    ]
    for method, url, body in calls:
        answer = beta.request(method, url, json=body)
        # 403 (another tenant), 404/422 (a value no tenant can have): never served.
        assert answer.status_code in (403, 404, 422), (method, url, answer.status_code, answer.text)
        assert "Zephyr-7731" not in answer.text
    uploads = [
        beta.post(f"/v1/files?tenant={in_path}&filename=intruder.txt", content=b"overwrite"),
        beta.post("/v1/files", params={"tenant": tenant}, files={"file": ("intruder.txt", b"overwrite")}),
        beta.post("/v1/jobs", data={"tenant": tenant}, files={"files": ("intruder.txt", b"overwrite")}),
    ]
    for answer in uploads:
        assert answer.status_code in (403, 404, 422), (answer.request.url, answer.status_code, answer.text)
    still = tenants["alpha"].get("/v1/documents/alpha/secret-plan")
    assert still.status_code == 200 and still.json()["state"] == "indexed"


def test_hostile_filters_and_headers_stay_in_the_callers_tenant(tenants: dict[str, httpx.Client]) -> None:
    beta = tenants["beta"]
    for value in ["alpha", "secret-plan", "*", "secret-plan | @tenant:{alpha}", "{alpha}", ")|(", "\\"]:
        for filters in ({"document_id": value}, {"source": [value]}, {"collection": value}):
            answer = beta.post(
                "/v1/retrieve",
                json={"question": "launch code Zephyr", "filters": filters, "mode": "hybrid"},
                headers={"x-tenant": "alpha", "dapr-caller-app-id": "lore-gateway", "tenant": "alpha"},
            )
            assert answer.status_code in (200, 422), answer.text
            assert "Zephyr-7731" not in answer.text


def test_roles_limit_what_a_key_can_do(tenants: dict[str, httpx.Client]) -> None:
    reader = tenants["alpha-reader"]
    assert reader.get("/v1/documents/alpha/secret-plan").status_code == 200
    refused = reader.post("/v1/documents", json={"text": "a reader writes"})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert reader.delete("/v1/documents/alpha/secret-plan").status_code == 403
    assert reader.post("/v1/keys", json={"role": "reader"}).status_code == 403
    assert tenants["alpha"].post("/v1/keys", json={"role": "reader"}).status_code == 403
    admin = tenants["alpha-admin"]
    own = admin.post("/v1/keys", json={"role": "reader", "name": "made by an admin"})
    assert own.status_code == 201 and own.json()["tenant"] == "alpha"
    other = admin.post("/v1/keys", json={"role": "admin", "tenant": "beta"})
    assert other.status_code == 403
    listed = admin.get("/v1/keys").json()["keys"]
    assert {k["tenant"] for k in listed} == {"alpha"}
    assert all("key" not in k and "secret_sha256" not in k for k in listed)


def test_a_revoked_key_stops_working_within_a_second(
    secured: Stack, operator: httpx.Client, tenants: dict[str, httpx.Client]
) -> None:
    key = _key(operator, "alpha", "reader")
    key_id = key.split("_")[1]
    with _client(secured, key) as client:
        assert client.get("/v1/documents/alpha/secret-plan").status_code == 200
        revoked = tenants["alpha-admin"].delete(f"/v1/keys/{key_id}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        started = time.monotonic()
        answer = client.get("/v1/documents/alpha/secret-plan")
        assert answer.status_code == 401
        assert time.monotonic() - started < 1.0
    # Another tenant's admin cannot revoke (or learn of) alpha's keys.
    assert tenants["beta"].delete(f"/v1/keys/{key_id}").status_code == 403


def _replica(stack: Stack, limit: str) -> tuple[subprocess.Popen[bytes], str]:
    """A second gateway process sharing the first one's sidecar and Redis, with its own port."""
    port = free_port()
    app = stack.apps[GATEWAY]
    env = {
        **os.environ,
        **app.app.env,
        "APP_PORT": str(port),
        "RATE_LIMIT": limit,
        "AUTH_REQUIRED": "true",
        "PYTHONUNBUFFERED": "1",
    }
    log = (stack.run_dir / "logs" / f"gateway-replica-{port}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "lore_gateway"], cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    tail = Path(log.name).read_text()[-3000:]
    raise AssertionError(f"gateway replica did not become ready (exit {proc.poll()}):\n{tail}")


def test_the_rate_limit_holds_across_two_gateway_replicas(secured: Stack, operator: httpx.Client) -> None:
    key = _key(operator, f"rl-{uuid.uuid4().hex[:8]}", "reader")
    replicas = [_replica(secured, "10/minute") for _ in range(2)]
    try:
        codes = []
        for n in range(14):
            _, url = replicas[n % 2]
            answer = httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {key}"}, timeout=30)
            codes.append(answer.status_code)
            if answer.status_code == 429:
                assert int(answer.headers["retry-after"]) >= 1
                assert answer.json()["error"] == "rate_limited"
        # 10 calls in the window whichever replica served them; a per-process counter would allow 14.
        assert codes == [200] * 10 + [429] * 4, codes
    finally:
        for proc, _ in replicas:
            proc.terminate()
            proc.wait(10)


def test_oversized_and_malformed_authorization_headers_are_refused_cleanly(anonymous: httpx.Client) -> None:
    for header in (
        "Bearer " + "k" * 60_000,
        "Bearer",
        "Bearer x y",
        "bearer lore_x_y",
        "Bearer lore_0123456789abcdef_" + "-" * 200,
    ):
        try:
            answer = anonymous.get("/v1/models", headers={"authorization": header})
        except httpx.RemoteProtocolError:
            continue  # the server closed the connection on a header it will not read: not a 500
        assert 400 <= answer.status_code < 500, (header[:20], answer.status_code)


def test_no_key_or_token_reaches_a_log(secured: Stack) -> None:
    """Runs last in this module: every log of the stack, and of the replicas, holds none of the
    keys and tokens used."""
    assert USED_KEYS, "run with the rest of the module"
    secrets = [
        *USED_KEYS,
        *(secured.secrets[n] for n in ("lore-admin-key", "dapr-api-token", "app-api-token")),
    ]
    logs = list((secured.run_dir / "logs").glob("*.log"))
    assert len(logs) >= 6
    for log in logs:
        text = log.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret is in {log.name}"
        # Only the secret part of a key matters, but neither the id nor the prefix is logged whole.
        for key in USED_KEYS:
            assert key.rsplit("_", 1)[1] not in text
