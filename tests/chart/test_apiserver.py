"""Lore's chart on a real Kubernetes API server (etcd + kube-apiserver 1.35.4, Dapr v1.18.3 CRDs):
install, upgrade with changed values, rollback and uninstall, checking the server's objects at
each step; and a values file that renders an invalid Dapr object is refused by the server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.chart.apiserver import ApiServer, api_server
from tests.chart.tools import CHART, Manifest, crd_schemas, helm_env, is_dapr, key, render, run, tool

VALUES = Path(__file__).resolve().parent / "values"
NAMESPACE = "lore"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    try:
        with api_server(workdir) as api:
            assert len(api.apply_crds()) == 5
            yield api
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name} (end)\n{log.read_text()[-3000:]}")
        raise


class Helm:
    def __init__(self, server: ApiServer, home: Path):
        self.server, self.env = server, helm_env(home)

    def __call__(self, *args: str | Path, check: bool = True) -> Any:
        return run([tool("helm"), *args, "--kubeconfig", self.server.kubeconfig], env=self.env, check=check)


@pytest.fixture(scope="module")
def helm(server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(server, tmp_path_factory.mktemp("helm"))


def _installed(doc: Manifest) -> bool:
    return "helm.sh/hook" not in doc["metadata"].get("annotations", {})


def assert_on_server(server: ApiServer, docs: list[Manifest]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every object (hooks aside) exists on the server; returns them by (kind, name)."""
    live = {}
    missing = []
    for doc in filter(_installed, docs):
        obj = server.get(doc["apiVersion"], doc["kind"], doc["metadata"]["name"], NAMESPACE)
        if obj is None:
            missing.append(key(doc))
        else:
            live[key(doc)] = obj
    assert not missing, f"not on the server: {missing}"
    return live


def _secret(server: ApiServer, name: str) -> str:
    obj = server.get("v1", "Secret", name, NAMESPACE)
    assert obj is not None
    return base64.b64decode(obj["data"]["token"]).decode()


def test_install_upgrade_rollback_uninstall(server: ApiServer, helm: Helm, tmp_path: Path) -> None:
    upgrade = VALUES / "upgrade-values.yaml"
    base = render(tmp_path)
    changed = render(tmp_path, (upgrade,))

    helm("install", "lore", CHART, "-n", NAMESPACE, "--create-namespace")
    live = assert_on_server(server, base)
    assert {k for k in live if k[0] in ("Component", "Configuration", "Resiliency", "Subscription")} == {
        key(d) for d in base if is_dapr(d)
    }
    assert live[("Deployment", "lore-gateway")]["spec"]["replicas"] == 1
    assert live[("Resiliency", "lore-resiliency")]["spec"]["policies"]["timeouts"]["answer"] == "20s"
    token = _secret(server, "lore-dapr-api-token")
    assert len(token) == 40

    helm("upgrade", "lore", CHART, "-n", NAMESPACE, "-f", upgrade)
    live = assert_on_server(server, changed)
    assert live[("Deployment", "lore-gateway")]["spec"]["replicas"] == 3
    assert live[("Resiliency", "lore-resiliency")]["spec"]["policies"]["timeouts"]["answer"] == "30s"
    endpoint = live[("HTTPEndpoint", "lore-llm")]
    assert endpoint["spec"]["baseUrl"] == "https://llm.example.com"
    assert {("HorizontalPodAutoscaler", "lore-query"), ("PodDisruptionBudget", "lore-gateway")} <= set(live)
    # The generated token survives the upgrade (the chart looks the live Secret up).
    assert _secret(server, "lore-dapr-api-token") == token

    helm("rollback", "lore", "1", "-n", NAMESPACE, "--wait=false")
    live = assert_on_server(server, base)
    assert live[("Deployment", "lore-gateway")]["spec"]["replicas"] == 1
    assert live[("Resiliency", "lore-resiliency")]["spec"]["policies"]["timeouts"]["answer"] == "20s"
    for gone in (("HTTPEndpoint", "lore-llm"), ("HorizontalPodAutoscaler", "lore-query")):
        doc = next(d for d in changed if key(d) == gone)
        assert server.get(doc["apiVersion"], doc["kind"], gone[1], NAMESPACE) is None, gone
    history = helm("history", "lore", "-n", NAMESPACE, "-o", "json").stdout
    assert history.count('"revision"') == 3

    helm("uninstall", "lore", "-n", NAMESPACE)
    for doc in filter(_installed, base):
        still = server.get(doc["apiVersion"], doc["kind"], doc["metadata"]["name"], NAMESPACE)
        kept = doc["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep"
        assert (still is not None) == kept, key(doc)


def test_server_rejects_an_invalid_dapr_object(server: ApiServer, helm: Helm, tmp_path: Path) -> None:
    invalid = VALUES / "invalid-dapr-values.yaml"
    # The schema lets the value through, and the offline CRD check catches it like the server does.
    resiliency = next(d for d in render(tmp_path, (invalid,)) if d["kind"] == "Resiliency")
    schema = crd_schemas()[(resiliency["apiVersion"], "Resiliency")]
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(resiliency))

    result = helm(
        "install", "lore-invalid", CHART, "-n", "invalid", "--create-namespace", "-f", invalid, check=False
    )
    assert result.returncode != 0
    assert "Resiliency" in result.stderr
    assert "spec.policies.timeouts.answer" in result.stderr, result.stderr
    assert server.get("dapr.io/v1alpha1", "Resiliency", "lore-resiliency", "invalid") is None
    # A failed install leaves a failed release behind, to uninstall.
    assert "failed" in helm("status", "lore-invalid", "-n", "invalid").stdout
    helm("uninstall", "lore-invalid", "-n", "invalid")
