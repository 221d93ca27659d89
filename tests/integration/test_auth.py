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


def _refused(answer: httpx.Response, status: int, error: str) -> None:
    """A clean refusal: the status, the API's JSON error body, never a 5xx."""
    assert answer.status_code == status, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    assert answer.json()["error"] == error, answer.text[:300]


def test_missing_malformed_unknown_and_revoked_keys_get_a_json_401(
    secured: Stack, anonymous: httpx.Client, operator: httpx.Client, tenants: dict[str, httpx.Client]
) -> None:
    revoked = _key(operator, "alpha", "reader")
    assert tenants["alpha-admin"].delete(f"/v1/keys/{revoked.split('_')[1]}").status_code == 200
    operator_key = secured.secrets["lore-admin-key"]
    unknown = "lore_0123456789abcdef_" + "x" * 43
    refused: list[dict[str, str] | dict[bytes, bytes]] = [
        {},
        {"authorization": ""},
        {"authorization": "Bearer"},
        {"authorization": "Bearer x y"},
        {"authorization": "bearer lore_x_y"},
        {"authorization": "Basic YWxwaGE6YmV0YQ=="},
        {"authorization": f"Token {operator_key}"},
        {"authorization": "Bearer lore_0123456789abcdef_" + "-" * 200},
        {"authorization": "Bearer lore_0123456789ABCDEF_" + "x" * 43},
        {b"authorization": b"Bearer lore_\xff\xfe_" + b"x" * 43},
        {"authorization": f"Bearer {unknown}"},
        {"authorization": f"Bearer {operator_key[:-1]}"},
        {"authorization": f"Bearer {operator_key}x"},
        {"authorization": f"Bearer {revoked}"},
        {"authorization": f"Bearer {revoked[:-1]}"},
    ]
    for headers in refused:
        for method, url in (("GET", "/v1/documents/alpha/secret-plan"), ("POST", "/v1/retrieve")):
            answer = anonymous.request(method, url, headers=headers, json={"question": "launch code"})
            _refused(answer, 401, "unauthenticated")
            assert answer.headers["www-authenticate"] == "Bearer"
            assert "Zephyr-7731" not in answer.text


def test_a_key_of_another_tenant_gets_a_json_403(tenants: dict[str, httpx.Client]) -> None:
    beta = tenants["beta"]
    _refused(beta.get("/v1/documents/alpha/secret-plan"), 403, "forbidden_tenant")
    _refused(beta.post("/v1/retrieve", json={"tenant": "alpha", "question": "code"}), 403, "forbidden_tenant")
    _refused(beta.get("/v1/keys", params={"tenant": "alpha"}), 403, "forbidden")


def test_oversized_headers_get_a_json_431_not_a_dropped_connection(
    anonymous: httpx.Client, tenants: dict[str, httpx.Client]
) -> None:
    """Past h11's default 16 KiB uvicorn would answer a plain-text 400 and close; the gateway reads
    up to 256 KiB and answers the API's JSON error (lore_gateway.main.HeaderLimit)."""
    for headers in (
        {"authorization": "Bearer " + "k" * 64 * 1024},
        {"authorization": "Bearer lore_0123456789abcdef_" + "x" * 64 * 1024},
        {f"x-padding-{n}": "p" * 1024 for n in range(64)},
    ):
        _refused(anonymous.get("/v1/models", headers=headers), 431, "headers_too_large")
    # A valid key does not make oversized headers pass, and the same connection serves the next call.
    alpha = tenants["alpha"]
    _refused(alpha.get("/v1/models", headers={"x-padding": "p" * 64 * 1024}), 431, "headers_too_large")
    assert alpha.get("/v1/models").status_code == 200
    # Just under the limit is served as usual.
    assert alpha.get("/v1/models", headers={"x-padding": "p" * 15 * 1024}).status_code == 200


def test_no_key_or_token_reaches_a_log(secured: Stack) -> None:
    """Runs last in this module: no log of the stack (or of the replicas) holds any of the keys,
    tokens or passwords used: API keys, the operator key, the Dapr and app API tokens, Redis'
    password."""
    assert USED_KEYS, "run with the rest of the module"
    names = ("lore-admin-key", "dapr-api-token", "app-api-token", "redis-password")
    secrets = [*USED_KEYS, *(secured.secrets[name] for name in names)]
    logs = [path for path in (secured.run_dir / "logs").rglob("*") if path.is_file()]
    assert len(logs) >= 6
    for log in logs:
        text = log.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret is in {log.name}"
        # Only the secret part of a key matters, but neither the id nor the prefix is logged whole.
        for key in USED_KEYS:
            assert key.rsplit("_", 1)[1] not in text
