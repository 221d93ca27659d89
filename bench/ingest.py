"""End-to-end ingestion throughput against the raw speed of the embedding model, same run.

Starts a whole local stack (Redis, three daprd sidecars, the apps) on free ports, then:

1. raw: embeds every chunk of the corpus in this process with the model the apps use
   (`lore_core.embeddings.build_embeddings`, same settings), chunks/s;
2. end to end: queues every document through the gateway (`POST /v1/documents?wait=false`) and
   waits until every status is `indexed`, chunks/s from the first request to the last status,
   and the ratio to raw (target >= 0.8); also redeliveries seen by lore-ingest (documents it
   found unchanged or stale, which a clean run has none of);
3. flood: the same number of new valid documents published with 1,000 invalid events mixed in;
   valid chunks/s as a ratio of the clean run (target >= 0.9), and every invalid event counted on
   the dead-letter topic;
4. interactive under load: synchronous one-page documents of another tenant while a backlog
   drains, latency p50/p95 against the same requests on a quiet stack;
5. peak RSS of the lore-ingest process (VmHWM).

Phase 2 also prints where the CPU went: the CPU seconds of every process of the stack and of this
benchmark during that phase, against the wall time times the cores. The model's share bounds the
ratio to raw: whatever the other processes use, the model cannot.

Usage:
    python bench/ingest.py [--docs 800] [--invalid 1000] [--daprd .cache/dapr/bin/daprd]
    python bench/ingest.py --only-e2e --set EMBED_WORKERS=2 --set EMBEDDING_THREADS=1
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
import psutil
import redis
from langchain_text_splitters import RecursiveCharacterTextSplitter
from local_stack import local_stack

from lore_core.embeddings import build_embeddings
from lore_core.settings import EmbeddingSettings, TopicSettings
from lore_stack.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
TOPICS = TopicSettings()
_VOCABULARY_TEXT = (
    "the a of and to in is that it for on with as was by be this are from or have an they which one "
    "system service request document index vector query cluster sidecar message retrieval model "
    "answer question search storage network latency throughput deployment configuration pipeline "
    "component runtime security policy customer invoice contract release engineer schedule report "
    "archive restore snapshot region volume replica quota tenant audit ledger bucket export backup"
)
VOCABULARY = _VOCABULARY_TEXT.split()
# One pooled client for every request of the benchmark (thread-safe). `httpx.post` builds a new
# client, with a new TLS context, per call: that took a fifth of the two cores in the end-to-end
# phase, CPU the stack being measured then did not get.
HTTP = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))


def corpus(tenant: str, count: int, seed: int) -> list[dict[str, Any]]:
    """Pseudo-English documents of 1 to 4 chunks (300 to 3,000 characters)."""
    rng = random.Random(seed)
    docs = []
    for n in range(count):
        sentences: list[str] = []
        size = rng.randint(300, 3000)
        while sum(len(s) for s in sentences) < size:
            words = rng.choices(VOCABULARY, k=rng.randint(6, 18))
            sentences.append(" ".join(words).capitalize() + ".")
        docs.append({"id": f"d{n:05d}", "tenant": tenant, "title": f"Doc {n}", "text": " ".join(sentences)})
    return docs


def chunks_of(docs: list[dict[str, Any]]) -> list[str]:
    splitter = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=120)
    return [t for d in docs for t in splitter.split_text(d["text"]) if t.strip()]


def indexed_count(client: redis.Redis, tenant: str) -> int:
    count = 0
    for key in client.scan_iter(match=f"lore-ingest||status:{tenant}:*", count=2000):
        data = client.hget(key, "data")
        if data is not None and json.loads(cast(bytes, data))["state"] == "indexed":
            count += 1
    return count


def wait_indexed(client: redis.Redis, tenant: str, expected: int, timeout: float = 1800) -> float:
    """Waits until ``expected`` statuses of ``tenant`` are `indexed`; returns the time it saw that.

    Each poll scans every status record: call it after `wait_metric`, which waits cheaply on one
    counter, so that the scans do not load the machine while the work being measured runs.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if indexed_count(client, tenant) >= expected:
            return time.monotonic()
        time.sleep(0.5)
    raise TimeoutError(f"{tenant}: not all {expected} documents indexed in {timeout}s")


def wait_metric(base: str, target: float, timeout: float = 1800) -> None:
    """Waits until lore-ingest has counted ``target`` indexed documents (its /metrics)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(base, "lore_ingest_documents_total", 'outcome="indexed"') >= target:
            return
        # Each poll renders lore-ingest's /metrics, CPU taken from the work being measured.
        time.sleep(0.5)
    raise TimeoutError(f"lore-ingest did not count {target} indexed documents in {timeout}s")


def post_all(url: str, docs: list[dict[str, Any]], publish: Callable[[dict[str, Any]], int]) -> None:
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(publish, docs))
    bad = [c for c in codes if c not in (202, 204)]
    if bad:
        raise RuntimeError(f"{len(bad)} publishes failed, e.g. HTTP {bad[0]} ({url})")


def metric(base: str, name: str, labels: str) -> float:
    for line in HTTP.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    return 0.0


def sync_latencies(gateway: str, tenant: str, count: int) -> list[float]:
    page = " ".join(["Invoices are archived for ten years and restored within a day."] * 45)
    out = []
    for n in range(count):
        started = time.perf_counter()
        response = HTTP.post(
            f"{gateway}/v1/documents", json={"id": f"page-{n}", "tenant": tenant, "text": f"{n} {page}"}
        )
        response.raise_for_status()
        out.append(time.perf_counter() - started)
    return out


def raw_throughput(chunks: list[str]) -> float:
    """Chunks/s of the apps' embedding model on ``chunks``, in this process (its own threads)."""
    model = build_embeddings(EmbeddingSettings())
    model.embed_documents(chunks[:32])  # warm-up
    started = time.perf_counter()
    model.embed_documents(chunks)
    return len(chunks) / (time.perf_counter() - started)


def process_label(process: psutil.Process) -> str:
    """`daprd lore-ingest`, `lore_ingest`, `redis-server`, ...: what a process of the stack is."""
    args = process.cmdline()
    for flag in ("--app-id", "-m"):
        if flag in args[:-1]:
            value = args[args.index(flag) + 1]
            return f"daprd {value}" if flag == "--app-id" else value
    return process.name()


def cpu_seconds() -> dict[str, float]:
    """User + system CPU seconds so far of this process and each of its descendants, by label.

    Threads are included (a process's times sum its threads'); processes that ended are not, so
    take both readings while the stack runs.
    """
    me = psutil.Process()
    totals: dict[str, float] = {}
    for process in [me, *me.children(recursive=True)]:
        try:
            label = "benchmark client" if process.pid == me.pid else process_label(process)
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        totals[label] = totals.get(label, 0.0) + times.user + times.system
    return totals


def print_cpu_shares(before: dict[str, float], after: dict[str, float], wall: float) -> None:
    """Each process's share of the machine's CPU (wall time x cores) between two readings."""
    capacity = wall * (psutil.cpu_count() or 1)
    used = {label: after[label] - before.get(label, 0.0) for label in after}
    print(f"CPU during the phase ({wall:.0f} s x {psutil.cpu_count()} cores):")
    for label, seconds in sorted(used.items(), key=lambda item: -item[1]):
        if seconds >= 0.01 * capacity:
            print(f"  {label:<28} {seconds:7.1f} s  {seconds / capacity:6.1%}")
    rest = sum(s for s in used.values() if s < 0.01 * capacity)
    idle = capacity - sum(used.values())
    print(f"  {'others of the stack':<28} {rest:7.1f} s  {rest / capacity:6.1%}")
    print(f"  {'not used by the stack':<28} {idle:7.1f} s  {idle / capacity:6.1%}")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=800)
    parser.add_argument("--invalid", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=20, help="synchronous one-page documents per phase")
    parser.add_argument("--daprd", default=str(ROOT / ".cache" / "dapr" / "bin" / "daprd"))
    parser.add_argument("--only-e2e", action="store_true", help="stop after the end-to-end phase")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every app of the stack (e.g. EMBED_WORKERS=2); the raw phases use the "
        "default model settings whatever this says",
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.set)
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the stack below is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    clean = corpus("bench-clean", args.docs, seed=1)
    chunks = chunks_of(clean)
    print(f"corpus: {len(clean)} documents, {len(chunks)} chunks")

    raw_before = raw_throughput(chunks)
    print(f"raw embedding (in this process, same chunks): {raw_before:.1f} chunks/s")

    with local_stack(Path(args.daprd), env) as stack:
        run(stack, args, clean, chunks, raw_before)


def run(
    stack: Stack, args: argparse.Namespace, clean: list[dict[str, Any]], chunks: list[str], raw: float
) -> None:
    gateway = stack.url("lore-gateway")
    ingest = stack.url("lore-ingest")
    assert stack.redis is not None
    client = stack.redis.client()
    dapr = httpx.Client(
        base_url=stack.apps["lore-ingest"].http,
        headers={"dapr-api-token": stack.secrets["dapr-api-token"]},
        timeout=60,
    )

    def queue(doc: dict[str, Any]) -> int:
        return HTTP.post(
            f"{gateway}/v1/documents", params={"wait": "false"}, json=doc, timeout=60
        ).status_code

    def publish(doc: dict[str, Any]) -> int:
        return dapr.post(f"/v1.0/publish/{TOPICS.pubsub}/{TOPICS.ingest_topic}", json=doc).status_code

    quiet = sync_latencies(gateway, "bench-quiet", args.pages)

    redelivered_before = metric(ingest, "lore_ingest_documents_total", 'outcome="unchanged"') + metric(
        ingest, "lore_ingest_documents_total", 'outcome="stale"'
    )
    indexed_before = metric(ingest, "lore_ingest_documents_total", 'outcome="indexed"')
    cpu_before = cpu_seconds()
    started = time.monotonic()
    post_all(gateway, clean, queue)
    wait_metric(ingest, indexed_before + len(clean))
    done = wait_indexed(client, "bench-clean", len(clean))
    cpu_after = cpu_seconds()
    e2e = len(chunks) / (done - started)
    redelivered = (
        metric(ingest, "lore_ingest_documents_total", 'outcome="unchanged"')
        + metric(ingest, "lore_ingest_documents_total", 'outcome="stale"')
        - redelivered_before
    )
    # Raw speed again, right after, on the same machine state: the end-to-end figure is compared
    # with the mean of the two, so load that comes and goes during the run biases neither side.
    raw_after = raw_throughput(chunks)
    raw = (raw + raw_after) / 2
    print(
        f"end to end (gateway -> pub/sub -> ingest -> index): {e2e:.1f} chunks/s = {e2e / raw:.2f} x raw "
        f"(raw {raw_after:.1f} chunks/s after, mean {raw:.1f}); redeliveries {redelivered:.0f}"
    )
    print_cpu_shares(cpu_before, cpu_after, done - started)
    if args.only_e2e:
        return

    valid = corpus("bench-flood", args.docs, seed=2)
    invalid = [{"tenant": "bench-flood", "text": f"bad {n}", "colour": "red"} for n in range(args.invalid)]
    mixed: list[dict[str, Any]] = [*valid, *invalid]
    random.Random(3).shuffle(mixed)
    letters_before = client.xlen(TOPICS.dead_letter_topic) if client.exists(TOPICS.dead_letter_topic) else 0
    indexed_before = metric(ingest, "lore_ingest_documents_total", 'outcome="indexed"')
    started = time.monotonic()
    post_all(gateway, mixed, publish)
    wait_metric(ingest, indexed_before + len(valid))
    done = wait_indexed(client, "bench-flood", len(valid))
    flood = len(chunks_of(valid)) / (done - started)
    deadline = time.monotonic() + 120
    while (
        client.xlen(TOPICS.dead_letter_topic) - letters_before < args.invalid and time.monotonic() < deadline
    ):
        time.sleep(0.5)
    letters = client.xlen(TOPICS.dead_letter_topic) - letters_before
    print(
        f"flood ({args.invalid} invalid events mixed in): valid {flood:.1f} chunks/s = "
        f"{flood / e2e:.2f} x clean; dead letters {letters}/{args.invalid}"
    )

    backlog = corpus("bench-backlog", args.docs, seed=4)
    post_all(gateway, backlog, publish)
    time.sleep(2)
    loaded = sync_latencies(gateway, "bench-interactive", args.pages)
    waiting = len(backlog) - indexed_count(client, "bench-backlog")
    wait_indexed(client, "bench-backlog", len(backlog))
    print(
        f"one-page synchronous ingestion, quiet: p50 {percentile(quiet, 50) * 1000:.0f} ms, "
        f"p95 {percentile(quiet, 95) * 1000:.0f} ms; during a backlog ({waiting} documents still "
        f"queued after): p50 {percentile(loaded, 50) * 1000:.0f} ms, "
        f"p95 {percentile(loaded, 95) * 1000:.0f} ms"
    )

    pid = stack.apps["lore-ingest"].app.pid
    rss = "?"
    if pid is not None:
        status = Path(f"/proc/{pid}/status").read_text()
        rss = next(line.split(":")[1].strip() for line in status.splitlines() if line.startswith("VmHWM"))
    print(f"lore-ingest peak RSS: {rss}")


if __name__ == "__main__":
    main()
