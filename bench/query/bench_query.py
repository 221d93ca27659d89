"""Retrieval at scale: build time, index memory, latency per mode and concurrency, HNSW recall.

An index of `--chunks` synthetic chunks (default 100,000) in one tenant is built the way Lore
builds it (`lore_core.search.IndexLayout`, `ensure_index`), and queried through Lore's read path
(`ChunkSearch.run`, the code behind `POST /v1/retrieve`, with its default tuning: 40 candidates per
ranker). Figures printed:

- build: the time to load the hashes (pipelined HSETs, no index yet) and then the time RediSearch
  takes to index them all after `FT.CREATE` (what a schema rebuild costs);
- memory: FT.INFO's index sizes per chunk (the hashes themselves are reported apart);
- latency p50/p95/p99 of `ChunkSearch.run` (k=10) per mode at concurrency 1, 8 and 32, with the
  question already embedded (embedding time is not Redis' and is measured in bench/embeddings.py);
- recall@10 of the HNSW KNN against exact search (a FLAT index over the same hashes, checked
  against numpy brute force) for several EF_RUNTIME values;
- with `--latency-ef`, the vector-mode latency at each of those EF_RUNTIME values too, so that the
  recall given up for speed can be read next to the speed gained;
- next to each latency row, the time Redis itself spent per `FT.SEARCH` (`INFO commandstats`):
  the rest of a request's latency is queueing for Redis' one query thread and the client.

Vectors: the chunks' vectors are synthetic but shaped like the model's (unit vectors scattered
around real all-MiniLM-L6-v2 embeddings of synthetic sentences); the queries' vectors come from the
real model. Redis and the benchmark share the machine, as the issue asks.

Usage:
    python bench/query/bench_query.py                       # 100,000 chunks, throwaway Redis
    python bench/query/bench_query.py --chunks 20000 --m 16 --ef-construction 200 --json out.json
"""

# redis-py leaves its search commands unannotated (as pyproject.toml notes for lore_core.search).
# mypy: disallow-untyped-calls=False
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import redis
from numpy.typing import NDArray
from redisvl.query import VectorQuery

from lore_core.embeddings import MiniLMEmbeddings
from lore_core.index import redis_client
from lore_core.search import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    ChunkSearch,
    IndexLayout,
    Mode,
    SearchRequest,
    Tuning,
    ensure_index,
    tenant_filter,
)
from lore_stack.redis_server import RedisServer
from lore_stack.stack import free_port

TENANT = "bench"
SMALL_TENANT = "small"
PREFIX = "bench:chunk:"
FLAT_INDEX = "bench-flat"
WORDS = [
    "router",
    "firmware",
    "camera",
    "battery",
    "warranty",
    "invoice",
    "refund",
    "policy",
    "leave",
    "salary",
    "contract",
    "server",
    "network",
    "mesh",
    "signal",
    "antenna",
    "cable",
    "update",
    "release",
    "version",
    "error",
    "code",
    "manual",
    "install",
    "reset",
    "password",
    "account",
    "billing",
    "payment",
    "storage",
    "backup",
    "restore",
    "retention",
    "purge",
    "archive",
    "support",
    "ticket",
    "customer",
    "order",
    "shipping",
    "delivery",
    "return",
    "replace",
    "repair",
    "sensor",
    "display",
    "screen",
    "keyboard",
    "audio",
    "video",
    "stream",
    "latency",
    "throughput",
    "memory",
    "disk",
    "cluster",
    "node",
    "replica",
    "shard",
    "index",
    "query",
    "vector",
    "search",
    "ranking",
    "relevance",
    "document",
    "chunk",
    "tenant",
    "security",
    "encryption",
    "token",
    "access",
    "audit",
    "compliance",
]


def _sentence(rng: random.Random, n: int) -> str:
    # Zipf-like word frequencies, so BM25 sees common and rare terms as in real text.
    return " ".join(WORDS[min(int(rng.paretovariate(1.2)) - 1, len(WORDS) - 1)] for _ in range(n))


def _codes(rng: random.Random) -> str:
    return f"NX-{rng.randint(1000, 9999)}{rng.choice('ABCDEFGH')}"


def corpus_vectors(
    embeddings: MiniLMEmbeddings, rng: random.Random, chunks: int, centres: int
) -> tuple[NDArray[np.float32], list[str]]:
    """Unit vectors scattered around real embeddings of `centres` synthetic sentences."""
    seeds = [_sentence(rng, 12) for _ in range(centres)]
    base = embeddings.embed(seeds)
    gen = np.random.default_rng(rng.randint(0, 2**31))
    assign = gen.integers(0, centres, size=chunks)
    noise = gen.normal(0.0, 0.045, size=(chunks, base.shape[1])).astype(np.float32)
    vectors = base[assign] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), seeds


def load(
    client: redis.Redis,
    vectors: NDArray[np.float32],
    rng: random.Random,
    batch: int = 1000,
    tenant: str = TENANT,
) -> float:
    """Writes the chunk hashes of ``tenant`` with pipelined HSETs (no transaction); returns seconds."""
    started = time.perf_counter()
    for start in range(0, len(vectors), batch):
        pipe = client.pipeline(transaction=False)
        for n in range(start, min(start + batch, len(vectors))):
            pipe.hset(
                f"{PREFIX}{tenant}:doc{n // 4}:{n % 4}",
                mapping={
                    "tenant": tenant,
                    "document_id": f"doc{n // 4}",
                    "title": _sentence(rng, 4),
                    "source": f"https://docs.test/{n // 4}",
                    "chunk": n % 4,
                    "text": f"{_sentence(rng, 60)} model {_codes(rng)}",
                    "embedding": vectors[n].tobytes(),
                },
            )
        pipe.execute()
    return time.perf_counter() - started


def wait_indexed(client: redis.Redis, name: str, expected: int, started: float) -> float:
    while True:
        info = client.ft(name).info()
        if int(info["num_docs"]) >= expected and str(info.get("indexing", "0")) in ("0", "b'0'"):
            return time.perf_counter() - started
        time.sleep(0.2)


def _mb(info: dict[str, Any], key: str) -> float:
    value = info.get(key)
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def memory(client: redis.Redis, name: str, chunks: int) -> dict[str, float]:
    info = client.ft(name).info()
    keys = [
        "vector_index_sz_mb",
        "inverted_sz_mb",
        "offset_vectors_sz_mb",
        "doc_table_size_mb",
        "sortable_values_size_mb",
        "key_table_size_mb",
        "tag_overhead_sz_mb",
        "text_overhead_sz_mb",
    ]
    figures = {k: _mb(info, k) for k in keys}
    # RediSearch 2.10's `total_index_memory_sz_mb` leaves the vector index out: sum the parts.
    total = sum(figures.values())
    figures["sum_mb"] = total
    figures["index_bytes_per_chunk"] = total * 1024 * 1024 / chunks
    figures["vector_bytes_per_chunk"] = figures["vector_index_sz_mb"] * 1024 * 1024 / chunks
    return figures


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


# Vector-mode variants timed next to `ChunkSearch.run`'s own read path, in the same run:
# `before` is the read path this benchmark first measured (a KNN of `candidates`=40 with every
# chunk's vector returned, cut to k by the caller); the policies force RediSearch's choice between
# walking the HNSW graph (`BATCHES`) and brute force over the tenant's chunks (`ADHOC_BF`).
VECTOR_VARIANTS: dict[str, Tuning | None] = {
    "vector (before: 40 + vectors)": None,
    "vector": Tuning(),
    "vector BATCHES": Tuning(hybrid_policy="BATCHES"),
    "vector ADHOC_BF": Tuning(hybrid_policy="ADHOC_BF"),
}


async def latency(
    url: str,
    layout: IndexLayout,
    mode: Mode,
    questions: Sequence[str],
    vectors: NDArray[np.float32],
    concurrency: int,
    total: int,
    tuning: Tuning | None = Tuning(),  # noqa: B008 (frozen dataclass)
    tenant: str = TENANT,
) -> dict[str, float]:
    """Latency of `ChunkSearch.run` (k=10); with ``tuning`` None, of the `before` read path.

    Also `server_ms`: Redis' own time per `FT.SEARCH` during the timed requests.
    """
    client = redis_client(url, None)
    search = ChunkSearch(client, layout, tuning)
    samples: list[float] = []
    counter = iter(range(0))

    async def worker() -> None:
        for n in counter:
            q = n % len(questions)
            request = SearchRequest(tenant=tenant, question=questions[q], vector=vectors[q], mode=mode, k=10)
            started = time.perf_counter()
            if tuning is None:
                (await search.vector(tenant, vectors[q], Tuning().candidates))[: request.k]
            else:
                await search.run(request)
            samples.append(time.perf_counter() - started)

    try:
        # Warm the connection pool and the server's caches.
        counter = iter(range(min(total, 2 * concurrency + 10)))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        samples.clear()
        calls, usec = search_stats(await client.info("commandstats"))
        counter = iter(range(total))
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        calls_after, usec_after = search_stats(await client.info("commandstats"))
    finally:
        await client.aclose()
    server_ms = (usec_after - usec) / max(calls_after - calls, 1) / 1000
    return {**percentiles(samples), "qps": total / wall, "server_ms": server_ms}


def search_stats(commandstats: dict[str, Any]) -> tuple[int, int]:
    """Calls of `FT.SEARCH` so far and the microseconds Redis spent in them."""
    stats = commandstats.get("cmdstat_FT.SEARCH", {"calls": 0, "usec": 0})
    return int(stats["calls"]), int(stats["usec"])


def knn_ids(
    client: redis.Redis,
    index: str,
    vector: NDArray[np.float32],
    k: int,
    ef: int | None,
    tenant: str = TENANT,
    policy: str | None = None,
) -> list[str]:
    query = VectorQuery(
        vector=vector.tobytes(),
        vector_field_name="embedding",
        filter_expression=tenant_filter(tenant),
        num_results=k,
        dtype="float32",
        return_fields=["document_id"],
        hybrid_policy=policy,
        **({"ef_runtime": ef} if ef and policy != "ADHOC_BF" else {}),
    )
    result = client.ft(index).search(query, query_params=query.params)
    return [doc.id for doc in result.docs]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="distinct questions (real model vectors)")
    parser.add_argument(
        "--centres", type=int, default=2000, help="real embeddings the corpus scatters around"
    )
    parser.add_argument("--m", type=int, default=HNSW_M)
    parser.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    parser.add_argument("--ef-runtime", type=int, nargs="+", default=[10, 20, 40, 64, 100, 200, 300, 400])
    parser.add_argument(
        "--latency-ef",
        type=int,
        nargs="*",
        default=[],
        help="also time vector mode (own choice and BATCHES) at these EF_RUNTIME values",
    )
    parser.add_argument(
        "--small-tenant",
        type=int,
        default=0,
        metavar="CHUNKS",
        help="also load a second tenant of this many chunks and time its vector queries per policy",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per mode and concurrency")
    parser.add_argument("--modes", nargs="+", default=[m.value for m in Mode])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    figures: dict[str, Any] = {"chunks": args.chunks, "m": args.m, "ef_construction": args.ef_construction}

    embeddings = MiniLMEmbeddings()
    started = time.perf_counter()
    vectors, _ = corpus_vectors(embeddings, rng, args.chunks, args.centres)
    questions = [f"{_sentence(rng, 6)} {_codes(rng)}" for _ in range(args.queries)]
    query_vectors = embeddings.embed(questions)
    print(f"vectors: {args.chunks} synthetic + {args.queries} real in {time.perf_counter() - started:.1f}s")

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(port=free_port(), data_dir=Path(tmp))
        server.start()
        try:
            client = server.client()
            client.config_set("appendonly", "no")  # a bulk load, not durability, is measured here
            url = f"redis://127.0.0.1:{server.port}/0"
            before = int(client.info("memory")["used_memory"])
            figures["load_s"] = load(client, vectors, rng)
            figures["hash_bytes_per_chunk"] = (
                int(client.info("memory")["used_memory"]) - before
            ) / args.chunks
            print(f"load: {args.chunks} hashes in {figures['load_s']:.1f}s (pipelined HSET)")
            if args.small_tenant:
                small_vectors, _ = corpus_vectors(embeddings, rng, args.small_tenant, args.centres // 10)
                load(client, small_vectors, rng, tenant=SMALL_TENANT)
                print(f"load: {args.small_tenant} more hashes of tenant {SMALL_TENANT!r}")

            layout = IndexLayout(
                name="bench-chunks",
                prefix=PREFIX,
                dimension=embeddings.dimension,
                hnsw_m=args.m,
                hnsw_ef_construction=args.ef_construction,
            )
            started = time.perf_counter()
            asyncio.run(_ensure(url, layout))
            total = args.chunks + args.small_tenant
            figures["build_hnsw_s"] = wait_indexed(client, layout.name, total, started)
            hnsw = f"HNSW (M={args.m}, EF_CONSTRUCTION={args.ef_construction})"
            print(f"build: {hnsw} {figures['build_hnsw_s']:.1f}s")
            figures["memory"] = memory(client, layout.name, total)
            print("memory: " + ", ".join(f"{k} {v:.1f}" for k, v in figures["memory"].items() if v))

            started = time.perf_counter()
            client.execute_command(
                "FT.CREATE", FLAT_INDEX, "ON", "HASH", "PREFIX", "1", PREFIX, "SCHEMA",
                "tenant", "TAG", "document_id", "TAG",
                "embedding", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM", str(embeddings.dimension),
                "DISTANCE_METRIC", "COSINE",
            )  # fmt: skip
            figures["build_flat_s"] = wait_indexed(client, FLAT_INDEX, total, started)
            print(f"build: FLAT {figures['build_flat_s']:.1f}s")

            # Exact neighbours: the FLAT index, checked against numpy brute force.
            exact = [knn_ids(client, FLAT_INDEX, v, 10, None) for v in query_vectors]
            order = np.argsort(-(query_vectors @ vectors.T), axis=1)[:, :10]
            numpy_ids = [{f"{PREFIX}{TENANT}:doc{n // 4}:{n % 4}" for n in row} for row in order]
            agree = statistics.fmean(len(set(e) & s) / 10 for e, s in zip(exact, numpy_ids, strict=True))
            print(f"recall@10 FLAT vs numpy: {agree:.4f}")
            figures["recall_flat_vs_numpy"] = agree
            figures["recall_at_10"] = {}
            for ef in args.ef_runtime:
                got = [knn_ids(client, layout.name, v, 10, ef) for v in query_vectors]
                started = time.perf_counter()
                for v in query_vectors:
                    knn_ids(client, layout.name, v, 10, ef)
                per_query = (time.perf_counter() - started) / len(query_vectors) * 1000
                recall = statistics.fmean(len(set(g) & set(e)) / 10 for g, e in zip(got, exact, strict=True))
                figures["recall_at_10"][ef] = {"recall": recall, "ms_per_query": per_query}
                print(f"recall@10 HNSW EF_RUNTIME={ef}: {recall:.4f} ({per_query:.2f} ms/query, sequential)")
            started = time.perf_counter()
            for v in query_vectors:
                knn_ids(client, FLAT_INDEX, v, 10, None)
            figures["flat_ms_per_query"] = (time.perf_counter() - started) / len(query_vectors) * 1000
            print(f"FLAT exact KNN: {figures['flat_ms_per_query']:.2f} ms/query, sequential")
            if args.small_tenant:
                figures["small_tenant"] = small_tenant_policies(client, url, layout, query_vectors, args)
            client.execute_command("FT.DROPINDEX", FLAT_INDEX)

            figures["latency"] = {}
            print("latency of ChunkSearch.run (k=10, question pre-embedded):")
            print(
                f"{'mode':<34}{'conc':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'qps':>10}"
                f"{'Redis ms':>10}{'p95 gain vs before':>20}"
            )
            rows: list[tuple[str, Mode, Tuning | None, IndexLayout]] = []
            for mode in (Mode(m) for m in args.modes):
                if mode is Mode.VECTOR:
                    rows += [(name, mode, tuning, layout) for name, tuning in VECTOR_VARIANTS.items()]
                    for ef in args.latency_ef:
                        tuned = dataclasses.replace(layout, hnsw_ef_runtime=ef)
                        rows += [
                            (f"vector EF={ef}", mode, Tuning(), tuned),
                            (f"vector BATCHES EF={ef}", mode, Tuning(hybrid_policy="BATCHES"), tuned),
                        ]
                else:
                    rows.append((mode.value, mode, Tuning(), layout))
            for concurrency in args.concurrency:
                baseline: float | None = None
                for name, mode, tuning, row_layout in rows:
                    timed = latency(
                        url, row_layout, mode, questions, query_vectors, concurrency, args.requests, tuning
                    )
                    stats = asyncio.run(timed)
                    if tuning is None:
                        baseline = stats["p95_ms"]
                    ratio = f"{baseline / stats['p95_ms']:>9.1f}x" if baseline and tuning is not None else ""
                    figures["latency"][f"{name}@{concurrency}"] = stats
                    print(
                        f"{name:<34}{concurrency:>6}{stats['p50_ms']:>10.2f}{stats['p95_ms']:>10.2f}"
                        f"{stats['p99_ms']:>10.2f}{stats['qps']:>10.0f}{stats['server_ms']:>10.2f}{ratio}"
                    )
            client.close()
        finally:
            server.kill()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    sys.stdout.flush()


def small_tenant_policies(
    client: redis.Redis,
    url: str,
    layout: IndexLayout,
    query_vectors: NDArray[np.float32],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Recall@10 and latency of each hybrid policy for the small tenant (a small share of the index:
    the case where walking the graph in batches finds few of its chunks per batch)."""
    exact = [knn_ids(client, FLAT_INDEX, v, 10, None, SMALL_TENANT) for v in query_vectors]
    share = args.small_tenant / (args.chunks + args.small_tenant)
    print(f"tenant {SMALL_TENANT!r} ({args.small_tenant} chunks, {share:.1%} of the index), vector, k=10:")
    out: dict[str, Any] = {}
    for policy in (None, "BATCHES", "ADHOC_BF"):
        got = [
            knn_ids(client, layout.name, v, 10, layout.hnsw_ef_runtime, SMALL_TENANT, policy)
            for v in query_vectors
        ]
        recall = statistics.fmean(len(set(g) & set(e)) / 10 for g, e in zip(got, exact, strict=True))
        tuning = Tuning(hybrid_policy=policy)
        for concurrency in args.concurrency:
            timed = latency(
                url,
                layout,
                Mode.VECTOR,
                [""],
                query_vectors,
                concurrency,
                args.requests,
                tuning,
                tenant=SMALL_TENANT,
            )
            stats = asyncio.run(timed)
            name = policy or "RediSearch's choice"
            out[f"{name}@{concurrency}"] = {**stats, "recall": recall}
            print(
                f"  {name:<22} conc {concurrency:>3}: recall@10 {recall:.3f}, p50 {stats['p50_ms']:.2f} ms, "
                f"p95 {stats['p95_ms']:.2f} ms, Redis {stats['server_ms']:.2f} ms/query"
            )
    return out


async def _ensure(url: str, layout: IndexLayout) -> None:
    client = redis_client(url, None)
    try:
        await ensure_index(client, layout)
    finally:
        await client.aclose()


if __name__ == "__main__":
    main()
