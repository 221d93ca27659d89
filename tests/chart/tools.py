"""Helpers of the chart tests: the built Kubernetes tools, helm runs, rendered manifests, CRD schemas.

The binaries come from `make k8s` (scripts/build-k8s.sh) in .cache/k8s/bin, or from `K8S_BIN`.
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "lore"
CRDS = Path(__file__).resolve().parent / "crds"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# The API server the tests start; `helm template` renders for the same version.
KUBE_VERSION = "1.35.4"

Manifest = dict[str, Any]


def tool(name: str) -> Path:
    """Path of a built Kubernetes tool; fails the test with the command that builds it."""
    path = Path(os.environ.get("K8S_BIN", ROOT / ".cache" / "k8s" / "bin")) / name
    if not path.exists():
        pytest.fail(f"{path} not found: run `make kube` (make test-chart does)")
    return path


def helm_env(home: Path) -> dict[str, str]:
    """An environment giving helm its own config, cache and data folders under ``home``."""
    env = dict(os.environ)
    for kind in ("CACHE", "CONFIG", "DATA"):
        env[f"HELM_{kind}_HOME"] = str(home / kind.lower())
    return env


def run(
    args: Sequence[str | Path], *, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def template_args(values: Sequence[Path] = (), sets: Sequence[str] = ()) -> list[str]:
    args = ["template", "lore", str(CHART), "--namespace", "lore", "--kube-version", KUBE_VERSION]
    for path in values:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


def render(home: Path, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> list[Manifest]:
    """The objects `helm template` renders (the `helm test` pod included)."""
    result = run([tool("helm"), *template_args(values, sets)], env=helm_env(home))
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def is_dapr(doc: Manifest) -> bool:
    return str(doc["apiVersion"]).startswith("dapr.io/")


def is_keda(doc: Manifest) -> bool:
    return str(doc["apiVersion"]).startswith("keda.sh/")


def key(doc: Manifest) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _strict(schema: Any) -> Any:
    """A CRD's structural schema as JSON Schema that also rejects unknown fields.

    The API server prunes unknown fields of a custom resource silently (unless a client asks for
    strict field validation), so a misspelled field would otherwise pass unnoticed.
    """
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """JSON Schemas of the Dapr resources by (apiVersion, kind), from tests/chart/crds (v1.18.3)."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas
