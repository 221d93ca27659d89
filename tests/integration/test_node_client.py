"""A caller in another language: the Node.js client of `clients/node` (official Dapr JavaScript SDK)
with its own daprd, against a stack of this module that lists `node-client` among the app-ids
trusted to invoke lore-query and lore-ingest (as a deployment lists its own services).

It publishes an ingestion event, waits for the document to be indexed, asks lore-query and checks
the citation (see `clients/node/client.mjs`). It knows Lore only through `contracts/`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
import yaml

from lore_core.contracts import DocumentEvent
from lore_core.settings import CommonSettings, TopicSettings
from lore_stack.procs import Proc
from lore_stack.stack import Stack, free_port
from tests.conftest import new_stack
from tests.integration.helpers import redis_of
from tests.otlp import OtlpCollector
from tests.unit.test_published_contracts import message_validator

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "node"
APP_ID = "node-client"
TOPICS = TopicSettings()
SECRET_STORE: str = CommonSettings.model_fields["secret_store"].default
# Stamp of the lock file `npm ci` last installed (npm ci empties node_modules, stamp included).
STAMP = CLIENT / "node_modules" / ".lore-package-lock.sha256"


def _lock_digest() -> str:
    return hashlib.sha256((CLIENT / "package-lock.json").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    """Replaces the session stack here: Dapr's access control refuses app-ids it does not list."""
    lore = new_stack(tmp_path_factory, otlp, name="node-client-stack", trusted_app_ids=(APP_ID,))
    try:
        lore.start(timeout=180)
        yield lore
    finally:
        lore.stop()


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """`npm ci` into clients/node/node_modules, unless it already holds what the lock file pins."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed (Node.js >= 20): apt-get install nodejs npm")
    digest = _lock_digest()
    # One install at a time: two test sessions of one clone may start together.
    lock = ROOT / ".cache" / "node-client-npm.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if not (STAMP.exists() and STAMP.read_text() == digest):
            # No install scripts: the SDK and its dependencies are plain JavaScript.
            done = subprocess.run(
                ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=CLIENT,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
            STAMP.write_text(digest)
    return CLIENT / "node_modules"


def client_resources(stack: Stack, target: Path) -> Path:
    """The stack's rendered resources, with `node-client` added to the scopes of the
    pub/sub component and of the secret store its Redis password comes from.

    The committed components list only Lore's own app-ids in their scopes (least privilege);
    a real deployment adds its callers the same way (contracts/README.md). Doing it only here keeps
    the committed scopes unchanged.
    """
    target.mkdir(parents=True, exist_ok=True)
    wanted = {TOPICS.pubsub}
    for path in sorted(stack.resources_dir.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            if doc.get("kind") == "Component" and doc["metadata"]["name"] == TOPICS.pubsub:
                wanted.add(doc.get("auth", {}).get("secretStore", SECRET_STORE))
        (target / path.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    for path in sorted(target.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            scopes: list[str] | None = doc.get("scopes")
            if doc.get("kind") == "Component" and doc["metadata"]["name"] in wanted and scopes:
                scopes.append(APP_ID)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return target


@pytest.fixture
def node_sidecar(stack: Stack, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A daprd for the Node client (app-id `node-client`), on the stack's Redis, name resolution
    and tokens; yields the environment the client runs with.

    One per client run: daprd reads an app's subscriptions once, when the app's port first opens.
    """
    app_port = free_port()
    # mTLS with the stack's Sentry: the stack's sidecars accept no other channel.
    daprd = stack.guest_sidecar(
        APP_ID, tmp_path, client_resources(stack, tmp_path / "resources"), app_port=app_port
    )
    daprd.start()
    try:
        yield {
            "DAPR_API_TOKEN": stack.secrets["dapr-api-token"],
            "APP_API_TOKEN": stack.secrets["app-api-token"],
            "DAPR_HTTP_PORT": str(daprd.http_port),
            "APP_PORT": str(app_port),
            "LOG": str(daprd.proc.log),
        }
    finally:
        daprd.stop()


def run_client(node_sidecar: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in node_sidecar.items() if k != "LOG"}
    topics = [
        "--pubsub",
        TOPICS.pubsub,
        "--ingest-topic",
        TOPICS.ingest_topic,
        "--events-topic",
        TOPICS.events_topic,
    ]
    return subprocess.run(
        ["node", "client.mjs", *topics, *args],
        cwd=CLIENT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_node_client_publishes_waits_for_indexing_and_gets_a_citation(
    stack: Stack, node_modules: Path, node_sidecar: dict[str, str]
) -> None:
    done = run_client(node_sidecar)
    assert done.returncode == 0, (
        f"node client exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        f"\n--- {TOPICS.events_topic} on Redis: {_stream_info(stack, TOPICS.events_topic)}"
        f"\n--- daprd ({APP_ID})\n{Proc('log', [], Path(node_sidecar['LOG'])).tail(30)}"
    )
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    # Kept with the run's logs: the event as delivered is the best example of the contract.
    (Path(node_sidecar["LOG"]).parent / "summary.json").write_text(json.dumps(summary, indent=2))
    assert summary["ok"] is True
    assert summary["waited_via"] == "event document.indexed"
    assert summary["citation"]["document_id"] == summary["document_id"]
    # The completion event as Lore really published it conforms to the published contract.
    event = summary["event"]
    assert event is not None and event["type"] == "document.indexed"
    errors = [e.message for e in message_validator("DocumentIndexed").iter_errors(event)]
    assert errors == [], f"{errors}\n{json.dumps(event, indent=2)}"
    assert DocumentEvent.model_validate(event).data.document_id == summary["document_id"]


def _stream_info(stack: Stack, topic: str) -> str:
    """Length and consumer groups of a topic's Redis stream (which subscriber read how far)."""
    try:
        client = redis_of(stack)
        return f"length {client.xlen(topic)}, groups {client.xinfo_groups(topic)}"
    except redis.RedisError as exc:
        return f"unavailable ({exc})"


def test_node_client_fails_clearly_when_no_completion_event_comes(
    node_modules: Path, node_sidecar: dict[str, str]
) -> None:
    # Listening on a topic nobody publishes to: the document is indexed, but the client hears
    # nothing, so success above really rests on the `document.indexed` event on `lore.events`.
    done = run_client(node_sidecar, "--events-topic", "lore.nowhere", "--timeout", "10")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "node client FAILED: no completion event for" in done.stderr
    assert '"state":"indexed"' in done.stderr  # lore-ingest's own view, for the diagnosis
    assert done.stdout == ""


def test_asyncapi_document_is_valid_asyncapi_3(node_modules: Path) -> None:
    """`contracts/asyncapi.yaml` against the AsyncAPI 3.0.0 JSON Schema the AsyncAPI initiative
    publishes (npm `@asyncapi/specs`, pinned in clients/node/package-lock.json)."""
    meta = json.loads(
        (node_modules / "@asyncapi" / "specs" / "schemas" / "3.0.0-without-$id.json").read_text()
    )
    document = yaml.safe_load((ROOT / "contracts" / "asyncapi.yaml").read_text())
    validator = jsonschema.Draft7Validator(meta)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
