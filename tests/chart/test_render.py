"""The chart lints and renders for the defaults and every ci/*-values.yaml, and what it renders is
valid: Kubernetes objects against the Kubernetes 1.35 schemas (kubernetes-validate, strict), Dapr
objects against the Dapr v1.18.3 CRD schemas."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.chart.tools import (
    CHART,
    CI_VALUES,
    KUBE_VERSION,
    Manifest,
    crd_schemas,
    helm_env,
    is_dapr,
    is_keda,
    key,
    render,
    run,
    tool,
)

VARIANTS = [pytest.param((), id="defaults")] + [pytest.param((path,), id=path.stem) for path in CI_VALUES]
APPS = ("gateway", "ingest", "query")


@pytest.fixture(scope="module")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm")


def test_every_ci_variant_exists() -> None:
    assert {p.stem for p in CI_VALUES} == {
        "minimal-values",
        "external-redis-values",
        "ha-values",
        "local-llm-values",
    }


@pytest.mark.parametrize("values", VARIANTS)
def test_chart_passes_strict_lint(values: tuple[Path, ...], helm_home: Path) -> None:
    args: list[str | Path] = [tool("helm"), "lint", "--strict", CHART, "--kube-version", KUBE_VERSION]
    for path in values:
        args += ["-f", path]
    result = run(args, env=helm_env(helm_home))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", VARIANTS)
def test_kubernetes_objects_are_valid_for_kubernetes_1_35(values: tuple[Path, ...], helm_home: Path) -> None:
    docs = [d for d in render(helm_home, values) if not is_dapr(d) and not is_keda(d)]
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, "1.35", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{key(doc)}: {exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("values", VARIANTS)
def test_dapr_objects_match_the_dapr_crd_schemas(values: tuple[Path, ...], helm_home: Path) -> None:
    schemas = crd_schemas()
    docs = [d for d in render(helm_home, values) if is_dapr(d)]
    kinds = {d["kind"] for d in docs}
    assert {"Component", "Configuration", "Resiliency", "Subscription"} <= kinds
    for doc in docs:
        schema = schemas.get((doc["apiVersion"], doc["kind"]))
        assert schema is not None, f"no CRD schema for {doc['apiVersion']} {doc['kind']}"
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
        assert not errors, f"{key(doc)}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_crd_schema_check_rejects_a_misspelled_dapr_field() -> None:
    schema = crd_schemas()[("dapr.io/v1alpha1", "Component")]
    doc = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "x"},
        "spec": {"type": "state.redis", "version": "v1", "metadata": [], "scope": ["a"]},
    }
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc))


def _by_kind(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_each_app_gets_its_dapr_annotations_and_its_tokens(helm_home: Path) -> None:
    docs = render(helm_home)
    deployments = _by_kind(docs, "Deployment")
    for app in APPS:
        pod = deployments[f"lore-{app}"]["spec"]["template"]
        notes = pod["metadata"]["annotations"]
        assert notes["dapr.io/enabled"] == "true"
        assert notes["dapr.io/app-id"] == f"lore-{app}"
        assert notes["dapr.io/config"] == "lore-config"
        for name in (
            "app-port",
            "api-token-secret",
            "app-token-secret",
            "sidecar-cpu-request",
            "sidecar-memory-request",
            "enable-metrics",
            "log-as-json",
            "graceful-shutdown-seconds",
            "enable-app-health-check",
        ):
            assert f"dapr.io/{name}" in notes, name
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        # The annotations give the tokens to daprd only; the app reads the same Secrets itself.
        assert env["DAPR_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": notes["dapr.io/api-token-secret"],
            "key": "token",
        }
        assert env["APP_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": notes["dapr.io/app-token-secret"],
            "key": "token",
        }
        assert env["APP_PORT"]["value"] == notes["dapr.io/app-port"]


def test_app_pods_run_non_root_on_a_read_only_root_filesystem(helm_home: Path) -> None:
    for doc in _by_kind(render(helm_home), "Deployment").values():
        spec = doc["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}
            probes = (container["livenessProbe"], container["readinessProbe"])
            assert all(p for p in probes)


def test_no_secret_value_is_rendered_from_values(helm_home: Path) -> None:
    docs = render(helm_home, (CHART / "ci" / "external-redis-values.yaml",))
    assert not _by_kind(docs, "Secret"), "every secret comes from an existingSecret"


def test_ha_variant_scales_ingest_with_keda_not_with_an_hpa(helm_home: Path) -> None:
    docs = render(helm_home, (CHART / "ci" / "ha-values.yaml",))
    hpas = _by_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {"lore-gateway", "lore-query"}
    scaled = _by_kind(docs, "ScaledObject")["lore-ingest"]
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "redis-streams"
    assert trigger["metadata"]["stream"] == "lore.documents"
    assert trigger["metadata"]["consumerGroup"] == "lore-ingest"
    assert "lagCount" in trigger["metadata"]
    assert "replicas" not in _by_kind(docs, "Deployment")["lore-ingest"]["spec"]
    assert set(_by_kind(docs, "PodDisruptionBudget")) == {"lore-gateway", "lore-ingest", "lore-query"}
