"""The Grafana dashboard and the Prometheus alert rules only name metrics the stack really exports.

A query naming a metric nobody exports draws an empty panel or an alert that never fires, and
nothing says so; renames in the apps or in a new daprd release would go unnoticed. So every
expression is parsed (promql-parser) and each metric it selects must appear as a sample in a
scrape of the running stack: every app's `/metrics` and every daprd's metrics port.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml

from lore_stack.stack import Stack
from tests.integration.helpers import TOPICS, eventually, gateway_auth, metric, sidecar

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "lore-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "lore-alerts.yaml"

# Grafana's interval variables stand where PromQL needs a duration; any duration parses the same.
_GRAFANA_DURATIONS = re.compile(
    r"\$(?:__rate_interval|__interval|__range)\b|\$\{__(?:rate_interval|interval|range)\}"
)
# `label_values(metric, label)` in a template variable is Grafana syntax, not PromQL.
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,")
# A sample line of the text exposition format: `name{labels} value` or `name value`.
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", re.MULTILINE)


def _expressions() -> dict[str, str]:
    """Every PromQL expression of the dashboard and the alert rules, keyed by where it is."""
    found: dict[str, str] = {}
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            found[f"rule {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    return found


def _selected_metrics(node: Any) -> set[str]:
    """Metric names selected anywhere in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        names = {
            m.value
            for m in node.matchers.matchers
            if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
        }
        return names | ({node.name} if node.name else set())
    if isinstance(node, promql_parser.MatrixSelector):
        return _selected_metrics(node.vector_selector)
    if isinstance(node, promql_parser.Call):
        return set().union(*(_selected_metrics(arg) for arg in node.args))
    if isinstance(node, promql_parser.AggregateExpr):
        return _selected_metrics(node.expr) | _selected_metrics(node.param)
    if isinstance(node, promql_parser.BinaryExpr):
        return _selected_metrics(node.lhs) | _selected_metrics(node.rhs)
    if isinstance(node, promql_parser.UnaryExpr | promql_parser.ParenExpr | promql_parser.SubqueryExpr):
        return _selected_metrics(node.expr)
    return set()


def _referenced() -> dict[str, set[str]]:
    """Metric name -> the panels and rules that select it (a parse error fails here)."""
    referenced: dict[str, set[str]] = {}
    for where, expr in _expressions().items():
        try:
            parsed = promql_parser.parse(_GRAFANA_DURATIONS.sub("5m", expr))
        except ValueError as error:
            raise AssertionError(f"{where}: {expr!r} does not parse: {error}") from error
        names = _selected_metrics(parsed)
        assert names, f"{where}: {expr!r} selects no metric"
        for name in names:
            referenced.setdefault(name, set()).add(where)
    for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        definition = variable.get("definition", "")
        for name in _LABEL_VALUES.findall(definition):
            referenced.setdefault(name, set()).add(f"variable {variable['name']!r}")
    return referenced


def _sample_names(text: str) -> set[str]:
    """Names of the series a Prometheus server stores from one scrape: each sample line's name.

    So a histogram `h` contributes `h_bucket`, `h_sum`, `h_count`, a prometheus_client counter `c`
    contributes `c_total` and daprd's counters keep their own names (`..._count`), which is exactly
    what a query has to select. prometheus_client's text parser is not used: it renames counter
    samples to `<family>_total`, which daprd's `dapr_http_server_request_count` is not.
    """
    return {match.group(1) for match in _SAMPLE.finditer(text)}


def _drive_traffic(stack: Stack) -> None:
    """Requests, an ingestion, an answer and a dead letter, so that labelled metrics have samples."""
    gateway = stack.url("lore-gateway")
    document = {
        "id": f"obs-{uuid.uuid4().hex[:8]}",
        "title": "Invoices",
        "text": "Invoices are sent monthly.",
    }
    auth = gateway_auth(stack)
    assert httpx.post(f"{gateway}/v1/documents", json=document, timeout=60, auth=auth).status_code == 200
    assert (
        httpx.post(
            f"{gateway}/v1/answers", json={"question": "When are invoices sent?"}, timeout=60, auth=auth
        ).status_code
        == 200
    )
    ingest = stack.url("lore-ingest")
    before = metric(ingest, "lore_dead_letters_total")
    with sidecar(stack, "lore-ingest") as dapr:
        # No text: lore-ingest refuses the event and moves it to the dead-letter topic.
        invalid = {"tenant": "observability", "title": "no text", "source": uuid.uuid4().hex}
        assert (
            dapr.post(f"/v1.0/publish/{TOPICS.pubsub}/{TOPICS.ingest_topic}", json=invalid).status_code == 204
        )
    eventually(lambda: metric(ingest, "lore_dead_letters_total") > before or None)


def test_dashboard_selects_its_prometheus_datasource_through_a_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_alert_rules_are_complete_and_every_expression_parses() -> None:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {
        "LoreIngestionLagGrowing",
        "LoreDeadLetters",
        "LoreCircuitBreakerOpen",
        "LoreHighServerErrorRatio",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
    # Parsing every panel and rule expression happens here too, without a stack.
    assert _referenced()


def test_every_metric_in_dashboard_and_alerts_is_exported_by_the_stack(stack: Stack) -> None:
    referenced = _referenced()
    _drive_traffic(stack)

    exported: set[str] = set()
    for app_id, app in stack.apps.items():
        for url in (f"{stack.url(app_id)}/metrics", f"http://127.0.0.1:{app.spec.metrics_port}/metrics"):
            response = httpx.get(url, timeout=10)
            assert response.status_code == 200, url
            exported |= _sample_names(response.text)

    missing = {name: sorted(where) for name, where in referenced.items() if name not in exported}
    assert not missing, f"metrics no app nor daprd exports: {json.dumps(missing, indent=2)}"
