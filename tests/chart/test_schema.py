"""values.schema.json rejects bad values before anything renders, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.tools import helm_env, run, template_args, tool


@pytest.mark.parametrize(
    ("sets", "field", "why"),
    [
        pytest.param(["gateway.replicaCount=two"], "/gateway/replicaCount", "want integer", id="wrong-type"),
        pytest.param(["gateway.appId=null"], "/gateway", "appId", id="missing-required"),
        pytest.param(
            ["redis.enabled=false"], "/redis/external/host", "minLength", id="external-redis-needs-host"
        ),
        pytest.param(
            ["llm.mode=external"], "/llm/external/baseUrl", "minLength", id="external-llm-needs-url"
        ),
        pytest.param(
            ["ingest.appId=Lore_Ingest"], "/ingest/appId", "does not match pattern", id="invalid-app-id"
        ),
        pytest.param(
            ["query.appId=lore.query"], "/query/appId", "does not match pattern", id="app-id-with-dot"
        ),
        pytest.param(["gateway.replicas=2"], "/gateway", "replicas", id="unknown-key"),
        pytest.param(["dapr.sidecar.cpuLimit=lots"], "/dapr/sidecar/cpuLimit", "pattern", id="bad-quantity"),
        pytest.param(["llm.mode=remote"], "/llm/mode", "must be one of", id="unknown-enum"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(
    sets: list[str], field: str, why: str, tmp_path: Path
) -> None:
    result = run([tool("helm"), *template_args(sets=sets)], env=helm_env(tmp_path), check=False)
    assert result.returncode != 0, result.stdout[:500]
    assert "values don't meet the specifications of the schema" in result.stderr
    assert f"'{field}'" in result.stderr, result.stderr
    assert why in result.stderr, result.stderr


def test_default_values_pass_the_schema(tmp_path: Path) -> None:
    run([tool("helm"), *template_args()], env=helm_env(tmp_path))
