"""The helm-unittest suites of charts/lore/tests (conditionals, annotations, rejected values)."""

from __future__ import annotations

from pathlib import Path

from tests.chart.tools import CHART, helm_env, run, tool


def test_helm_unittest_suites_pass(tmp_path: Path) -> None:
    suites = sorted((CHART / "tests").glob("*_test.yaml"))
    assert len(suites) >= 4
    result = run([tool("helm-unittest"), "--strict", "--color=false", CHART], env=helm_env(tmp_path))
    assert f"Test Suites: {len(suites)} passed, {len(suites)} total" in result.stdout, result.stdout
