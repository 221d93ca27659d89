"""Ingestion under load: a bulk backlog does not starve interactive callers, and a flood of
invalid events is dead-lettered without losing a valid one.

Throughput figures are measured by `bench/ingest.py`; these tests check behaviour only, with
relative conditions (the backlog is still draining) rather than wall-clock limits.
"""

from __future__ import annotations

import json
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import httpx
import pytest

from lore_stack.stack import Stack
from tests.integration.helpers import TOPICS, eventually, pending, redis_of, sidecar, statuses

pytestmark = pytest.mark.integration

PUBLISH = f"/v1.0/publish/{TOPICS.pubsub}/{TOPICS.ingest_topic}"
SENTENCE = "Quarterly ledgers are reconciled against the bank statements before the audit window. "


def _publish_all(stack: Stack, events: list[Any]) -> None:
    with sidecar(stack, "lore-ingest") as dapr, ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda e: dapr.post(PUBLISH, json=e).status_code, events))
    assert codes == [204] * len(events)


def _indexed(stack: Stack, tenant: str) -> int:
    return sum(1 for s in statuses(stack, tenant).values() if s["state"] == "indexed")


def test_interactive_ingestion_is_not_starved_by_a_bulk_backlog(gateway: httpx.Client, stack: Stack) -> None:
    tenant = f"bulk-{uuid.uuid4().hex[:6]}"
    backlog = [
        {"id": f"b{n:04d}", "tenant": tenant, "text": f"{n}. " + SENTENCE * random.Random(n).randint(4, 8)}
        for n in range(1000)
    ]
    _publish_all(stack, backlog)
    eventually(lambda: True if _indexed(stack, tenant) >= 10 else None, timeout=120)
    response = gateway.post(
        "/v1/documents",
        json={"id": "urgent", "tenant": f"{tenant}-other", "text": "Refunds are paid within five days."},
    )
    remaining = len(backlog) - _indexed(stack, tenant)
    assert response.status_code == 200
    assert response.json()["state"] == "indexed"
    # Served while most of the backlog was still waiting, not after it drained.
    assert remaining > len(backlog) // 2, f"only {remaining} backlog documents were left"
    eventually(lambda: True if _indexed(stack, tenant) == len(backlog) else None, timeout=600, interval=1)


def test_flood_of_invalid_events_is_dead_lettered_and_every_valid_one_indexed(stack: Stack) -> None:
    tenant = f"flood-{uuid.uuid4().hex[:6]}"
    marker = uuid.uuid4().hex
    valid = [{"id": f"v{n:03d}", "tenant": tenant, "text": f"{n}. {SENTENCE * 3}"} for n in range(100)]
    invalid: list[Any] = []
    for n in range(1000):
        kind = n % 5
        if kind == 0:
            invalid.append({"tenant": tenant, "text": "x", "colour": marker})  # unknown field
        elif kind == 1:
            invalid.append({"id": f"../{marker}", "tenant": tenant, "text": "x"})  # forbidden id
        elif kind == 2:
            invalid.append({"tenant": f"Bad Tenant {marker}", "text": "x"})  # forbidden tenant
        elif kind == 3:
            invalid.append([marker, n])  # valid JSON, not an object
        else:
            invalid.append({"tenant": tenant, "source": marker, "text": "   "})  # blank text
    events = [*valid, *invalid]
    random.Random(7).shuffle(events)
    _publish_all(stack, events)

    eventually(lambda: True if _indexed(stack, tenant) == len(valid) else None, timeout=600, interval=1)

    def letters() -> int:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], redis_of(stack).xrange(TOPICS.dead_letter_topic)
        )
        count = 0
        for _, fields in entries:
            letter = json.loads(fields[b"data"])["data"]
            if marker in json.dumps(letter["event"]):
                assert letter["reason"].startswith("invalid document")
                count += 1
        return count

    eventually(lambda: True if letters() == len(invalid) else None, timeout=120, interval=1)
    eventually(lambda: True if pending(stack) == 0 else None, timeout=60)
