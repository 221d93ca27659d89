"""Exactly-once effect over at-least-once delivery, under crashes.

A backlog of ingestion events drains while lore-ingest, its sidecar or Redis is killed with
SIGKILL; the stack's supervisor restarts what died (as under `make run`). Afterwards every
document is indexed exactly once: its status is final, its chunks are those a clean run produces,
its chunks were written once (the manifest's `writes` counter), and nothing is left pending.

This module runs its own stack whose Redis Streams component reclaims abandoned events after 15 s
instead of 120 s (`processingTimeout`), so that recovery from a dead sidecar fits in a test; the
code paths are the production ones.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from langchain_text_splitters import RecursiveCharacterTextSplitter

from lore_core.contracts import DocumentIn
from lore_stack.stack import Stack
from tests.conftest import new_stack
from tests.integration.helpers import (
    TOPICS,
    chunk_keys,
    eventually,
    gateway_auth,
    manifest,
    pending,
    sidecar,
    statuses,
)
from tests.otlp import OtlpCollector

pytestmark = pytest.mark.integration

BACKLOG = 200
WORDS = [
    "invoice",
    "archive",
    "restore",
    "snapshot",
    "region",
    "volume",
    "replica",
    "quota",
    "tenant",
    "policy",
    "retention",
    "audit",
    "ledger",
    "cluster",
    "bucket",
    "export",
    "import",
    "schedule",
    "window",
    "backup",
    "vault",
    "rotation",
    "key",
    "token",
]


def _patched_resources(src: tuple[Path, ...], dst: Path) -> tuple[Path, ...]:
    """Copies the resource folders, shortening the broker's reclaim timers (from 120 s and 15 s)."""
    out = []
    for n, folder in enumerate(src):
        target = dst / f"resources-{n}"
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("brokers"))
        for path in target.glob("*.yaml"):
            doc = yaml.safe_load(path.read_text())
            if doc.get("kind") == "Component" and doc["spec"]["type"] == "pubsub.redis":
                for item in doc["spec"]["metadata"]:
                    # Not shorter than ~30 s: Dapr's transactional outbox (statestore) holds each
                    # internal message while it polls for the transaction's marker, up to ~10 s plus
                    # a scan delay (dapr v1.18.1 pkg/runtime/pubsub/outbox.go:285-296); a shorter
                    # processingTimeout reclaims messages still being held, every reclaim adds
                    # pollers, and after a crash daprd was seen spinning at 120 % CPU on them.
                    if item["name"] == "processingTimeout":
                        item["value"] = "30s"
                    if item["name"] == "redeliverInterval":
                        item["value"] = "2s"
                path.write_text(yaml.safe_dump(doc))
        out.append(target)
    return tuple(out)


@pytest.fixture(scope="module")
def crash_stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    lore = new_stack(tmp_path_factory, otlp, name="crash-stack")
    lore.runfile = dataclasses.replace(
        lore.runfile, resources_paths=_patched_resources(lore.runfile.resources_paths, lore.run_dir)
    )
    lore.supervise = True
    lore.say = lambda line: print(f"[supervisor] {line}")
    try:
        lore.start(timeout=180)
        yield lore
    finally:
        lore.stop()


def _documents(tenant: str, count: int) -> list[dict[str, Any]]:
    rng = random.Random(tenant)
    docs = []
    for n in range(count):
        # 1 to 3 chunks each (800-character chunks).
        words = [rng.choice(WORDS) for _ in range(rng.randint(40, 330))]
        text = " ".join(words).capitalize() + "."
        docs.append({"id": f"doc-{n:04d}", "tenant": tenant, "title": f"Doc {n}", "text": text})
    return docs


def _publish(stack: Stack, docs: list[dict[str, Any]]) -> None:
    """Queues every document through the gateway (`accepted` first, then the event)."""
    url = f"{stack.url('lore-gateway')}/v1/documents"
    auth = gateway_auth(stack)

    def one(doc: dict[str, Any]) -> int:
        return httpx.post(url, params={"wait": "false"}, json=doc, timeout=60, auth=auth).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, docs))
    assert codes == [202] * len(docs)


def _indexed(stack: Stack, tenant: str) -> int:
    return sum(1 for s in statuses(stack, tenant).values() if s["state"] == "indexed")


def _assert_exactly_once(stack: Stack, docs: list[dict[str, Any]]) -> None:
    tenant = docs[0]["tenant"]
    found = eventually(
        lambda: (lambda s: s if sum(x["state"] == "indexed" for x in s.values()) == len(docs) else None)(
            statuses(stack, tenant)
        ),
        timeout=240,
        interval=1.0,
    )
    eventually(lambda: True if pending(stack) == 0 else None, timeout=60)
    splitter = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=120)
    wrong = []
    for doc in docs:
        expected = len([t for t in splitter.split_text(doc["text"]) if t.strip()])
        status = found[doc["id"]]
        stored = manifest(stack, tenant, doc["id"])
        observed = (
            status["state"],
            status["chunks"],
            len(chunk_keys(stack, tenant, doc["id"])),
            stored.get("revision"),
            stored.get("writes"),
        )
        if observed != ("indexed", expected, expected, DocumentIn(**doc).revision(), "1"):
            wrong.append((doc["id"], observed))
    assert wrong == [], f"{len(wrong)} documents not indexed exactly once, e.g. {wrong[:5]}"


def _crash_mid_backlog(stack: Stack, tenant: str, kill: Any) -> None:
    docs = _documents(tenant, BACKLOG)
    _publish(stack, docs)
    eventually(lambda: True if _indexed(stack, tenant) >= 20 else None, timeout=120, interval=0.2)
    assert _indexed(stack, tenant) < BACKLOG, "the backlog drained before the crash; make it larger"
    kill()
    _assert_exactly_once(stack, docs)


def test_ingest_app_killed_mid_backlog_loses_and_duplicates_nothing(crash_stack: Stack) -> None:
    before = crash_stack.supervisor.restarts["lore-ingest"] if crash_stack.supervisor else 0
    _crash_mid_backlog(crash_stack, "crash-app", crash_stack.apps["lore-ingest"].app.kill)
    assert crash_stack.supervisor is not None
    assert crash_stack.supervisor.restarts["lore-ingest"] == before + 1


def test_ingest_sidecar_killed_mid_backlog_loses_and_duplicates_nothing(crash_stack: Stack) -> None:
    _crash_mid_backlog(crash_stack, "crash-sidecar", crash_stack.apps["lore-ingest"].daprd.kill)
    assert crash_stack.supervisor is not None
    assert crash_stack.supervisor.restarts["daprd-lore-ingest"] >= 1


def test_redis_killed_mid_backlog_loses_and_duplicates_nothing(crash_stack: Stack) -> None:
    assert crash_stack.redis is not None
    _crash_mid_backlog(crash_stack, "crash-redis", crash_stack.redis.kill)
    assert crash_stack.supervisor is not None
    assert crash_stack.supervisor.restarts["redis"] >= 1


def test_gateway_readiness_names_a_dead_ingest_app_until_it_is_back(crash_stack: Stack) -> None:
    gateway = crash_stack.url("lore-gateway")
    crash_stack.apps["lore-ingest"].app.kill()
    report = eventually(
        lambda: (lambda r: r.json() if r.status_code == 503 else None)(
            httpx.get(f"{gateway}/readyz", timeout=10)
        ),
        timeout=30,
        interval=0.2,
    )
    assert any("ingest" in name and not ok for name, ok in report["checks"].items())
    eventually(
        lambda: True if httpx.get(f"{gateway}/readyz", timeout=10).status_code == 200 else None,
        timeout=60,
    )
    with sidecar(crash_stack, "lore-gateway") as dapr:
        event = {"id": f"after-{uuid.uuid4().hex[:6]}", "tenant": "crash-ready", "text": "Back again."}
        assert (
            dapr.post(f"/v1.0/publish/{TOPICS.pubsub}/{TOPICS.ingest_topic}", json=event).status_code == 204
        )
    eventually(lambda: True if _indexed(crash_stack, "crash-ready") == 1 else None, timeout=60)
