"""Small helpers for tests that talk to real sidecars and the real Redis.

Topic, index, prefix and consumer names come from the apps' own settings defaults (the stack
under test runs with those defaults), never from literals in the tests.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import redis
import yaml
from langchain_text_splitters import RecursiveCharacterTextSplitter

from lore_core.contracts import DocumentIn
from lore_core.settings import IndexSettings, TopicSettings
from lore_stack.stack import Stack
from tests.tenant_keys import TenantKeys

T = TypeVar("T")

TOPICS = TopicSettings()
INDEX_NAME: str = IndexSettings.model_fields["index_name"].default
INDEX_PREFIX: str = IndexSettings.model_fields["index_prefix"].default
INGEST_APP = "lore-ingest"
# Dapr's Redis Streams consumer group is the subscriber's app-id (its default consumerID).
INGEST_GROUP = INGEST_APP


def sidecar(stack: Stack, app_id: str) -> httpx.Client:
    """An HTTP client for ``app_id``'s daprd, carrying the Dapr API token."""
    return httpx.Client(
        base_url=stack.apps[app_id].http,
        headers={"dapr-api-token": stack.secrets["dapr-api-token"]},
        timeout=30,
    )


def redis_of(stack: Stack) -> redis.Redis:
    assert stack.redis is not None
    return stack.redis.client()


def eventually(probe: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.2) -> T:
    """Polls ``probe`` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def chunk_keys(stack: Stack, tenant: str, document_id: str) -> list[bytes]:
    return sorted(redis_of(stack).scan_iter(match=f"{INDEX_PREFIX}{tenant}:{document_id}:*"))


def manifest(stack: Stack, tenant: str, document_id: str) -> dict[str, str]:
    """The index manifest of a document (chunks, revision, sequence, writes)."""
    prefix = f"{INDEX_PREFIX.rstrip(':')}:manifest:"
    raw = cast(dict[bytes, bytes], redis_of(stack).hgetall(f"{prefix}{tenant}:{document_id}"))
    return {k.decode(): v.decode() for k, v in raw.items()}


def statuses(stack: Stack, tenant: str) -> dict[str, dict[str, Any]]:
    """Every status record of ``tenant``, read from the state store's Redis keys
    (`{app-id}||status:{tenant}:{id}`, field `data`), by document id."""
    client = redis_of(stack)
    found = {}
    for key in client.scan_iter(match=f"{INGEST_APP}||status:{tenant}:*", count=1000):
        data = client.hget(key, "data")
        if data is not None:
            value = json.loads(cast(bytes, data))
            found[value["document_id"]] = value
    return found


def pending(stack: Stack, topic: str = TOPICS.ingest_topic) -> int:
    """Events of ``topic`` delivered to lore-ingest's consumer group and not yet acknowledged."""
    info: dict[str, Any] = redis_of(stack).xpending(topic, INGEST_GROUP)
    return int(info["pending"])


def metric(base_url: str, name: str, labels: str = "") -> float:
    """Reads one sample from an app's Prometheus `/metrics` (0 when absent)."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    pattern = re.compile(rf"^{re.escape(name)}(?:{{{re.escape(labels)}}})? (\S+)$", re.MULTILINE)
    match = pattern.search(text)
    return float(match.group(1)) if match else 0.0


def drained(stack: Stack, topic: str = TOPICS.ingest_topic) -> bool:
    """Every event of ``topic`` was delivered to lore-ingest's group and acknowledged."""
    groups: list[dict[str, Any]] = redis_of(stack).xinfo_groups(topic)
    group = next((g for g in groups if g["name"] in (INGEST_GROUP, INGEST_GROUP.encode())), None)
    return group is not None and group["lag"] == 0 and group["pending"] == 0


_AUTH: dict[int, TenantKeys] = {}


def gateway_auth(stack: Stack) -> TenantKeys:
    """Signs gateway requests with a key of the tenant each names (one key per tenant and stack)."""
    if id(stack) not in _AUTH:
        _AUTH[id(stack)] = TenantKeys(stack.url("lore-gateway"), stack.secrets["lore-admin-key"])
    return _AUTH[id(stack)]


def gateway_client(stack: Stack, *, timeout: float = 60) -> httpx.Client:
    """An HTTP client for the gateway of ``stack``, authenticated per tenant (`gateway_auth`)."""
    return httpx.Client(base_url=stack.url("lore-gateway"), timeout=timeout, auth=gateway_auth(stack))


def fast_reclaim(src: tuple[Path, ...], dst: Path) -> tuple[Path, ...]:
    """Copies the resource folders into ``dst``, shortening the Redis Streams broker's reclaim
    timers (`processingTimeout` 120 s -> 30 s, `redeliverInterval` 15 s -> 2 s), so an event held by
    a sidecar that died is redelivered within a test's patience; returns the copies."""
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


def assert_indexed_once(stack: Stack, docs: list[dict[str, Any]], *, timeout: float = 240) -> None:
    """Waits until every document of ``docs`` (one tenant) is indexed and nothing is pending, then
    checks each was indexed exactly once: final status, the chunks a clean run produces, its
    current revision, and one index write (the manifest's `writes` counter)."""
    tenant = docs[0]["tenant"]
    ids = {d["id"] for d in docs}

    def all_indexed() -> dict[str, dict[str, Any]] | None:
        found = statuses(stack, tenant)
        return found if all(found.get(i, {}).get("state") == "indexed" for i in ids) else None

    try:
        found = eventually(all_indexed, timeout=timeout, interval=1.0)
    except AssertionError:
        now = statuses(stack, tenant)
        missing = sorted(
            (i, now.get(i, {}).get("state")) for i in ids if now.get(i, {}).get("state") != "indexed"
        )
        raise AssertionError(
            f"{len(missing)} of {len(ids)} not indexed within {timeout}s: {missing[:10]}"
        ) from None
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
