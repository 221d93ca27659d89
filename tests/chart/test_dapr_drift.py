"""One source of truth: the Dapr resources the chart renders with its defaults are those of
components/ and dapr/ (what `make run` and the integration tests use), and the environment the
chart gives each app names only settings that app has.

A difference fails unless it is listed below with its reason; the Kafka pub/sub variant
(components/brokers/) is a local alternative the chart does not offer.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
import yaml

from lore_core.callers import CallerSettings
from lore_core.settings import TopicSettings
from lore_gateway.settings import Settings as GatewaySettings
from lore_ingest.settings import Settings as IngestSettings
from lore_query.settings import Settings as QuerySettings
from tests.chart.tools import ROOT, Manifest, key, render

LOCAL_FILES = sorted((ROOT / "components").glob("*.yaml")) + sorted((ROOT / "dapr").glob("*.yaml"))
# Values that make the chart render every resource a local file has (the LLM HTTPEndpoint too).
RENDER_SETS = [
    "llm.mode=external",
    "llm.external.baseUrl=http://127.0.0.1:8088",
    "llm.external.existingSecret=llm-api-key",
    "llm.external.existingSecretKey=llm-api-key",
]


class Allowed:
    """Differences of one resource: paths (fnmatch patterns over flattened paths) whose values may
    differ, and paths present only locally or only in the chart."""

    def __init__(
        self, differ: tuple[str, ...] = (), only_local: tuple[str, ...] = (), only_chart: tuple[str, ...] = ()
    ):
        self.differ, self.only_local, self.only_chart = differ, only_local, only_chart


# Where the chart's resources may differ from the local ones, and why.
REDIS_ADDRESS = ("spec.metadata.redisHost", "spec.metadata.redisPassword.secretKeyRef.*")
ALLOWED: dict[tuple[str, str], Allowed] = {
    # Locally a JSON file (`make secrets`); in a cluster the namespace's Secrets.
    ("Component", "secretstore"): Allowed(differ=("spec.type",), only_local=("spec.metadata.secretsFile",)),
    # The Redis address and the password's Secret are the cluster's own.
    ("Component", "statestore"): Allowed(differ=REDIS_ADDRESS),
    ("Component", "keystore"): Allowed(differ=REDIS_ADDRESS),
    ("Component", "memorystore"): Allowed(differ=REDIS_ADDRESS),
    ("Component", "pubsub"): Allowed(differ=REDIS_ADDRESS),
    # Workflow actor state: a SQLite file locally (one lore-ingest); Redis in the chart, shared by
    # every lore-ingest replica (a pod's SQLite file is not).
    ("Component", "workflowstore"): Allowed(
        differ=("spec.type",),
        only_local=("spec.metadata.connectionString", "spec.metadata.busyTimeout"),
        only_chart=("spec.metadata.redisHost", "spec.metadata.redisPassword*", "auth*"),
    ),
    # The model server's address is the cluster's.
    ("HTTPEndpoint", "lore-llm"): Allowed(differ=("spec.baseUrl",)),
    # Name resolution: a local SQLite file vs Kubernetes DNS (the default, so not rendered);
    # mTLS: the local Sentry reads `spec.mtls`, in a cluster the control plane's `daprsystem`
    # Configuration holds it; the policies' namespace is the release's; the OTLP exporter is the
    # cluster's.
    ("Configuration", "lore-config"): Allowed(
        differ=(
            "spec.accessControl.trustDomain",
            "spec.accessControl.policies.*.trustDomain",
            "spec.accessControl.policies.*.namespace",
        ),
        only_local=("spec.nameResolution*", "spec.mtls*"),
        only_chart=("spec.tracing.otel*",),
    ),
}


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaves; Dapr's `metadata: [{name, value}]` lists become maps by name and
    `scopes` a sorted list, since their order carries no meaning."""
    if isinstance(node, list) and node and all(isinstance(i, dict) and "name" in i for i in node):
        node = {i["name"]: {k: v for k, v in i.items() if k != "name"} for i in node}
        node = {k: (v["value"] if set(v) == {"value"} else v) for k, v in node.items()}
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(node, list) and node and all(not isinstance(i, (dict, list)) for i in node):
        return {prefix.rstrip("."): sorted(str(i) for i in node)}
    if isinstance(node, list) and node:
        out = {}
        for n, v in enumerate(node):
            out.update(_flatten(v, f"{prefix}{n}."))
        return out
    return {prefix.rstrip("."): str(node) if isinstance(node, (int, float, bool)) else node}


def _comparable(doc: Manifest) -> dict[str, Any]:
    flat = _flatten({k: v for k, v in doc.items() if k != "metadata"})
    return {path: value for path, value in flat.items() if path not in ("spec.metadata", "spec.metadata.")}


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def drift(local: Manifest, chart: Manifest, allowed: Allowed) -> list[str]:
    """The differences between a local resource and the chart's that ``allowed`` does not list."""
    mine, theirs = _comparable(local), _comparable(chart)
    problems = []
    for path in sorted(set(mine) | set(theirs)):
        if path not in theirs:
            if not _matches(path, allowed.only_local):
                problems.append(f"{path}: only in the local file ({mine[path]!r})")
        elif path not in mine:
            if not _matches(path, allowed.only_chart):
                problems.append(f"{path}: only in the chart ({theirs[path]!r})")
        elif mine[path] != theirs[path] and not _matches(path, allowed.differ):
            problems.append(f"{path}: local {mine[path]!r}, chart {theirs[path]!r}")
    return problems


@pytest.fixture(scope="module")
def chart_docs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Manifest]:
    docs = render(tmp_path_factory.mktemp("helm"), sets=RENDER_SETS)
    return {key(d): d for d in docs}


def _local_docs() -> list[Manifest]:
    return [doc for path in LOCAL_FILES for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("local", _local_docs(), ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_chart_renders_the_local_dapr_resource(
    local: Manifest, chart_docs: dict[tuple[str, str], Manifest]
) -> None:
    chart = chart_docs.get(key(local))
    assert chart is not None, f"the chart renders no {key(local)} (local files: components/, dapr/)"
    assert chart["apiVersion"] == local["apiVersion"]
    problems = drift(local, chart, ALLOWED.get(key(local), Allowed()))
    assert not problems, f"{key(local)} drifted from the local file:\n  " + "\n  ".join(problems)


def test_drift_check_catches_a_changed_policy_value(chart_docs: dict[tuple[str, str], Manifest]) -> None:
    local = next(d for d in _local_docs() if d["kind"] == "Resiliency")
    changed = yaml.safe_load(yaml.safe_dump(local))
    changed["spec"]["policies"]["timeouts"]["answer"] = "21s"
    assert drift(changed, chart_docs[key(local)], ALLOWED.get(key(local), Allowed())) == [
        "spec.policies.timeouts.answer: local '21s', chart '20s'"
    ]


def test_chart_renders_no_dapr_resource_the_local_files_lack(
    chart_docs: dict[tuple[str, str], Manifest],
) -> None:
    local = {key(d) for d in _local_docs()}
    extra = {k for k, d in chart_docs.items() if d["apiVersion"].startswith("dapr.io/") and k not in local}
    # The declarative subscription stands for the one lore-ingest serves at /dapr/subscribe.
    assert {kind for kind, _ in extra} <= {"Subscription"}, extra


def test_subscription_matches_the_one_lore_ingest_serves(chart_docs: dict[tuple[str, str], Manifest]) -> None:
    topics = TopicSettings()
    sub = next(d for d in chart_docs.values() if d["kind"] == "Subscription")
    assert sub["spec"]["pubsubname"] == topics.pubsub
    assert sub["spec"]["topic"] == topics.ingest_topic
    assert sub["spec"]["deadLetterTopic"] == topics.exhausted_topic
    # dapr-ext-fastapi's DaprApp.subscribe serves /events/{pubsub}/{topic} when no route is given.
    assert sub["spec"]["routes"]["default"] == f"/events/{topics.pubsub}/{topics.ingest_topic}"
    assert sub["scopes"] == ["lore-ingest"]


@pytest.mark.parametrize(
    ("app", "settings"),
    [("gateway", GatewaySettings), ("ingest", IngestSettings), ("query", QuerySettings)],
)
def test_app_env_names_only_settings_of_that_app(
    app: str, settings: type[Any], chart_docs: dict[tuple[str, str], Manifest]
) -> None:
    deployment = chart_docs[("Deployment", f"lore-{app}")]
    names = {e["name"].lower() for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    # lore-ingest and lore-query also read the callers they trust (lore_core.callers).
    read = set(settings.model_fields) | (set(CallerSettings.model_fields) if app != "gateway" else set())
    unknown = names - read
    assert not unknown, f"lore-{app} gets env vars its Settings does not read: {sorted(unknown)}"
