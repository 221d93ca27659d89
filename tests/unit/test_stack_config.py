"""The local stack renders the same Dapr resources the repo holds, changing only local values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.requests import Request

from lore_core.callers import CALLER_HEADER, TENANT_HEADER, Callers, CallerSettings
from lore_core.http import ApiError
from lore_stack import resources, runfile
from lore_stack.secrets import NAMES, ensure_secrets

ROOT = Path(__file__).resolve().parents[2]


def test_runfile_lists_the_three_apps_with_distinct_ports() -> None:
    spec = runfile.load(ROOT / "dapr.yaml")
    assert {a.app_id for a in spec.apps} == {"lore-gateway", "lore-ingest", "lore-query"}
    ports = [p for a in spec.apps for p in (a.app_port, a.dapr_http_port, a.dapr_grpc_port, a.metrics_port)]
    assert len(ports) == len(set(ports))
    assert all(a.app_dir.is_dir() for a in spec.apps)


def test_render_changes_only_environment_values(tmp_path: Path) -> None:
    spec = runfile.load(ROOT / "dapr.yaml")
    out, config = resources.render(
        spec.resources_paths,
        spec.config_path,
        tmp_path,
        redis_host="127.0.0.1:7777",
        secrets_file=tmp_path / "s.json",
        nameresolution_db=tmp_path / "nr.db",
    )
    docs = {d["metadata"]["name"]: d for p in out.glob("*.yaml") for d in yaml.safe_load_all(p.read_text())}
    assert set(docs) == {
        "statestore",
        "pubsub",
        "secretstore",
        "workflowstore",
        "keystore",
        "memorystore",
        "lore-resiliency",
        "lore-llm",
    }
    meta = {m["name"]: m for m in docs["pubsub"]["spec"]["metadata"]}
    assert meta["redisHost"]["value"] == "127.0.0.1:7777"
    assert meta["redisPassword"]["secretKeyRef"]["name"] == "redis-password"
    assert docs["secretstore"]["spec"]["metadata"][0]["value"] == str(tmp_path / "s.json")
    original = yaml.safe_load((ROOT / "components" / "pubsub.yaml").read_text())
    assert docs["pubsub"]["scopes"] == original["scopes"]
    rendered = yaml.safe_load(config.read_text())
    assert rendered["spec"]["nameResolution"]["configuration"]["connectionString"] == str(tmp_path / "nr.db")
    assert rendered["spec"]["tracing"]["samplingRate"] == "1"


def test_secrets_are_random_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = ensure_secrets(path)
    assert set(first) == set(NAMES)
    assert len(set(first.values())) == len(NAMES)
    assert ensure_secrets(path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_workflow_store_is_a_sqlite_file_in_the_run_dir_and_makes_ingest_an_actor_host(
    tmp_path: Path,
) -> None:
    spec = runfile.load(ROOT / "dapr.yaml")
    out, _ = resources.render(
        spec.resources_paths,
        spec.config_path,
        tmp_path,
        redis_host="127.0.0.1:7777",
        secrets_file=tmp_path / "s.json",
        nameresolution_db=tmp_path / "nr.db",
        sqlite_dir=tmp_path,
    )
    docs = {d["metadata"]["name"]: d for p in out.glob("*.yaml") for d in yaml.safe_load_all(p.read_text())}
    meta = {m["name"]: m["value"] for m in docs["workflowstore"]["spec"]["metadata"]}
    assert meta["connectionString"] == str(tmp_path / "workflows.db")
    assert meta["actorStateStore"] == "true"
    assert resources.actor_hosts(out) == frozenset({"lore-ingest"})


def _render_config(
    tmp_path: Path, trusted: tuple[str, ...] = (), otlp_endpoint: str | None = None
) -> dict[str, Any]:
    spec = runfile.load(ROOT / "dapr.yaml")
    _, config = resources.render(
        spec.resources_paths,
        spec.config_path,
        tmp_path,
        redis_host="127.0.0.1:7777",
        secrets_file=tmp_path / "s.json",
        nameresolution_db=tmp_path / "nr.db",
        trusted_app_ids=trusted,
        otlp_endpoint=otlp_endpoint,
    )
    rendered: dict[str, Any] = yaml.safe_load(config.read_text())
    return rendered


def test_access_control_denies_by_default_and_trusts_only_the_gateway(tmp_path: Path) -> None:
    spec = _render_config(tmp_path)["spec"]
    assert spec["mtls"]["enabled"] is True
    acl = spec["accessControl"]
    assert acl["defaultAction"] == "deny"
    assert [p["appId"] for p in acl["policies"]] == ["lore-gateway"]
    gateway = acl["policies"][0]
    assert gateway["defaultAction"] == "deny"
    verbs = {op["name"]: set(op["httpVerb"]) for op in gateway["operations"]}
    assert verbs["/answers"] == {"POST"} and verbs["/retrieve"] == {"POST"}
    assert verbs["/documents"] == {"POST", "GET", "DELETE"}
    # daprd lower-cases an HTTP operation before matching (pkg/acl/acl.go), so names must be too.
    assert all(name == name.lower() for name in verbs)
    assert all(op["action"] == "allow" for op in gateway["operations"])


def test_trusted_app_ids_get_a_copy_of_the_gateway_policy(tmp_path: Path) -> None:
    acl = _render_config(tmp_path, ("billing", "lore-gateway", "billing"))["spec"]["accessControl"]
    policies = {p["appId"]: p for p in acl["policies"]}
    assert list(policies) == ["lore-gateway", "billing"]
    assert {k: v for k, v in policies["billing"].items() if k != "appId"} == {
        k: v for k, v in policies["lore-gateway"].items() if k != "appId"
    }
    # The committed file is unchanged: the list belongs to the deployment.
    committed = yaml.safe_load((ROOT / "dapr" / "config.yaml").read_text())
    assert [p["appId"] for p in committed["spec"]["accessControl"]["policies"]] == ["lore-gateway"]


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {"type": "http", "method": "POST", "path": "/retrieve", "headers": raw, "query_string": b""}
    )


def test_callers_trust_the_gateway_and_listed_app_ids_only() -> None:
    callers = Callers.from_settings(CallerSettings(trusted_app_ids=("billing",)))
    assert callers.check(_request({CALLER_HEADER: "lore-gateway"}), "acme") is None
    assert callers.check(_request({CALLER_HEADER: "billing", TENANT_HEADER: "acme"}), "acme") is None
    for headers in ({}, {CALLER_HEADER: "crm"}):
        with pytest.raises(ApiError) as refused:
            callers.check(_request(headers), "acme")
        assert (refused.value.status_code, refused.value.code) == (403, "forbidden_caller")


def test_a_tenant_header_naming_another_tenant_is_a_403_refusal() -> None:
    callers = Callers(["lore-gateway"])
    refusal = callers.check(_request({CALLER_HEADER: "lore-gateway", TENANT_HEADER: "acme"}), "other")
    assert refusal is not None
    assert (refusal.error, refusal.status) == ("tenant_mismatch", 403)


def test_trusted_app_ids_come_from_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_APP_IDS", '["billing", "crm"]')
    assert CallerSettings().trusted_app_ids == ("billing", "crm")
    monkeypatch.setenv("TRUSTED_APP_IDS", "[]")
    assert CallerSettings().trusted_app_ids == ()


def test_sidecars_export_their_spans_where_the_apps_do(tmp_path: Path) -> None:
    assert "otel" not in _render_config(tmp_path)["spec"]["tracing"]
    tracing = _render_config(tmp_path, otlp_endpoint="http://127.0.0.1:4318")["spec"]["tracing"]
    assert tracing == {
        "samplingRate": "1",
        "otel": {"endpointAddress": "127.0.0.1:4318", "isSecure": False, "protocol": "http"},
    }
