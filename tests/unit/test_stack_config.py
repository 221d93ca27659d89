"""The local stack renders the same Dapr resources the repo holds, changing only local values."""

from __future__ import annotations

from pathlib import Path

import yaml

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
