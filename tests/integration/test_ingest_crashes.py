"""Exactly-once effect over at-least-once delivery, under crashes.

A backlog of ingestion events drains while lore-ingest, its sidecar or Redis is killed with
SIGKILL; the stack's supervisor restarts what died (as under `make run`). Afterwards every
document is indexed exactly once: its status is final, its chunks are those a clean run produces,
its chunks were written once (the manifest's `writes` counter), and nothing is left pending.

This module runs its own stack whose Redis Streams component reclaims abandoned events after 30 s
instead of 120 s (`processingTimeout`, `helpers.fast_reclaim`), so that recovery from a dead
sidecar fits in a test; the code paths are the production ones.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from lore_stack.stack import Stack
from tests.conftest import new_stack
from tests.integration.corpus import documents
from tests.integration.helpers import (
    TOPICS,
    assert_indexed_once,
    eventually,
    fast_reclaim,
    gateway_auth,
    redis_of,
    sidecar,
    statuses,
)
from tests.otlp import OtlpCollector

pytestmark = pytest.mark.integration

BACKLOG = 200


@pytest.fixture(scope="module")
def crash_stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    lore = new_stack(tmp_path_factory, otlp, name="crash-stack")
    lore.runfile = dataclasses.replace(
        lore.runfile, resources_paths=fast_reclaim(lore.runfile.resources_paths, lore.run_dir)
    )
    lore.supervise = True
    lore.say = lambda line: print(f"[supervisor] {line}")
    try:
        lore.start(timeout=180)
        yield lore
    finally:
        lore.stop()


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


def _crash_mid_backlog(stack: Stack, tenant: str, kill: Any) -> None:
    docs = documents(tenant, BACKLOG, words=(40, 330), tenant=tenant)  # 1 to 3 chunks each
    _publish(stack, docs)
    eventually(lambda: True if _indexed(stack, tenant) >= 20 else None, timeout=120, interval=0.2)
    assert _indexed(stack, tenant) < BACKLOG, "the backlog drained before the crash; make it larger"
    kill()
    assert_indexed_once(stack, docs)


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
    server = crash_stack.redis

    def kill_and_wait_for_the_restart() -> None:
        server.kill()

        # The checks read Redis directly: wait for the supervisor's restart (the AOF reload can take
        # longer than redis-py's own retries on a loaded machine, seen in CI).
        def back() -> bool | None:
            try:
                return True if redis_of(crash_stack).ping() else None
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                return None

        eventually(back, timeout=90, interval=0.5)

    _crash_mid_backlog(crash_stack, "crash-redis", kill_and_wait_for_the_restart)
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
    with sidecar(crash_stack, "lore-ingest") as dapr:  # the pubsub component's only app
        event = {"id": f"after-{uuid.uuid4().hex[:6]}", "tenant": "crash-ready", "text": "Back again."}
        assert (
            dapr.post(f"/v1.0/publish/{TOPICS.pubsub}/{TOPICS.ingest_topic}", json=event).status_code == 204
        )
    eventually(lambda: True if _indexed(crash_stack, "crash-ready") == 1 else None, timeout=60)
