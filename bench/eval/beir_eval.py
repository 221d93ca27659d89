"""Retrieval quality of Lore's modes on a BEIR-format dataset: Recall@k, MRR@10 and nDCG@10.

A BEIR dataset is a folder with `corpus.jsonl` (`{"_id", "title", "text"}` per line),
`queries.jsonl` (`{"_id", "text"}`) and `qrels/test.tsv` (header, then `query-id corpus-id score`).
Every corpus document goes through Lore's own write path (the chunking lore-ingest uses, the
`MiniLMEmbeddings` model, `VectorIndex.replace_document`) and every query through its own read
path (`lore_core.search.ChunkSearch`, the code behind `POST /v1/retrieve`). Chunk rankings become
document rankings by each document's best chunk, as BEIR judges documents.

Redis: `--redis-url` to use a running Redis 8 with the query engine (the index `lore-eval-*` and its
keys are replaced), else a throwaway redis-server (lore_stack's) is started and removed.

Usage:
    python bench/eval/beir_eval.py bench/eval/sample                   # the sample in this repo
    python bench/eval/beir_eval.py ~/beir/scifact --modes vector hybrid --max-queries 300
    python bench/eval/beir_eval.py DATASET --json figures.json --scorer BM25 --rrf 1.0 0.5

A BEIR dataset downloaded from its usual mirror unpacks to exactly this layout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from langchain_text_splitters import RecursiveCharacterTextSplitter

from lore_core.embeddings import MiniLMEmbeddings
from lore_core.index import Chunk, VectorIndex, redis_client
from lore_core.search import ChunkSearch, IndexLayout, Mode, Scorer, SearchRequest, Tuning
from lore_stack.redis_server import RedisServer
from lore_stack.stack import free_port

TENANT = "eval"
# lore-ingest's defaults (CHUNK_SIZE, CHUNK_OVERLAP), so chunks are what ingestion would make.
CHUNK_SIZE = 800
CHUNK_OVERLAP = 120


@dataclass(frozen=True)
class Dataset:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {document id: relevance}


def load(folder: Path, split: str = "test", max_queries: int | None = None) -> Dataset:
    """Reads a BEIR folder; keeps only the queries that have judgements in the split."""
    corpus: dict[str, tuple[str, str]] = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                corpus[str(row["_id"])] = (str(row.get("title") or ""), str(row.get("text") or ""))
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as tsv:
        reader = csv.reader(tsv, delimiter="\t")
        next(reader, None)
        for row in reader:
            if len(row) >= 3 and int(row[2]) > 0:
                qrels[row[0]][row[1]] = int(row[2])
    queries: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                if str(row["_id"]) in qrels:
                    queries[str(row["_id"])] = str(row["text"])
    if max_queries is not None:
        queries = dict(list(queries.items())[:max_queries])
    return Dataset(corpus=corpus, queries=queries, qrels={q: qrels[q] for q in queries})


def ndcg_at(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    """nDCG@k with graded gains (BEIR and trec_eval use gain = relevance, log2 discount)."""
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def mrr_at(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def recall_at(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    wanted = {doc for doc, gain in relevant.items() if gain > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


@contextlib.contextmanager
def redis_url(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="lore-eval-") as tmp:
        server = RedisServer(port=free_port(), data_dir=Path(tmp))
        server.start()
        try:
            yield f"redis://127.0.0.1:{server.port}/0"
        finally:
            server.kill()


async def index_corpus(index: VectorIndex, embeddings: MiniLMEmbeddings, dataset: Dataset) -> int:
    """Splits, embeds and writes every document; returns the number of chunks."""
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    total = 0
    batch: list[tuple[str, str, list[str]]] = []

    async def flush() -> None:
        texts = [t for _, _, chunks in batch for t in chunks]
        vectors = await asyncio.to_thread(embeddings.embed, texts)
        start = 0
        for doc_id, title, chunks in batch:
            await index.replace_document(
                tenant=TENANT,
                document_id=doc_id,
                title=title,
                source=None,
                chunks=[Chunk(text=t, index=n) for n, t in enumerate(chunks)],
                vectors=vectors[start : start + len(chunks)],
                revision=str(hash((title, tuple(chunks)))),
                sequence=1,
            )
            start += len(chunks)
        batch.clear()

    for doc_id, (title, text) in dataset.corpus.items():
        chunks = [t for t in splitter.split_text(text) if t.strip()] or [title or doc_id]
        batch.append((doc_id, title, chunks))
        total += len(chunks)
        if sum(len(c) for _, _, c in batch) >= 64:
            await flush()
    if batch:
        await flush()
    return total


async def wait_indexed(index_name: str, url: str, expected: int) -> None:
    """Waits until RediSearch has indexed every chunk (it indexes in the background)."""
    client = redis_client(url, None)
    try:
        while True:
            info = await client.ft(index_name).info()  # type: ignore[no-untyped-call]
            if int(info["num_docs"]) >= expected and str(info.get("indexing", "0")) in ("0", "0.0"):
                return
            await asyncio.sleep(0.2)
    finally:
        await client.aclose()


async def evaluate(
    dataset: Dataset,
    *,
    url: str,
    modes: Sequence[Mode],
    tuning: Tuning,
    title_weight: float = 2.0,
    k: int = 10,
    embeddings: MiniLMEmbeddings | None = None,
) -> dict[str, dict[str, float]]:
    """Indexes the corpus and returns `{mode: {metric: value}}` averaged over the queries."""
    embeddings = embeddings or MiniLMEmbeddings()
    layout = IndexLayout(
        name="lore-eval-chunks",
        prefix="lore-eval:chunk:",
        dimension=embeddings.dimension,
        title_weight=title_weight,
    )
    client = redis_client(url, None)
    try:
        # A fresh index: drop the old one with its documents (DD), then create it again.
        with contextlib.suppress(Exception):
            await client.ft(layout.name).dropindex(delete_documents=True)
        await client.delete(f"lore:index-schema:{layout.name}")
        index = VectorIndex(
            client,
            name=layout.name,
            prefix=layout.prefix,
            dimension=layout.dimension,
            manifest_prefix="lore-eval:doc:",
        )
        await index.ensure()
        started = time.monotonic()
        chunks = await index_corpus(index, embeddings, dataset)
        await wait_indexed(layout.name, url, chunks)
        took = time.monotonic() - started
        print(f"indexed {len(dataset.corpus)} documents as {chunks} chunks in {took:.1f}s", file=sys.stderr)
        search = ChunkSearch(client, layout, tuning)
        ids = list(dataset.queries)
        vectors = await asyncio.to_thread(embeddings.embed, [dataset.queries[q] for q in ids])
        figures: dict[str, dict[str, float]] = {}
        for mode in modes:
            sums: dict[str, float] = defaultdict(float)
            for query_id, vector in zip(ids, vectors, strict=True):
                request = SearchRequest(
                    tenant=TENANT, question=dataset.queries[query_id], vector=vector, mode=mode, k=3 * k
                )
                ranked: list[str] = []
                for match in await search.run(request):
                    if match.document_id not in ranked:
                        ranked.append(match.document_id)
                relevant = dataset.qrels[query_id]
                sums["ndcg@10"] += ndcg_at(ranked, relevant, 10)
                sums["mrr@10"] += mrr_at(ranked, relevant, 10)
                sums[f"recall@{k}"] += recall_at(ranked, relevant, k)
            figures[mode.value] = {name: round(total / len(ids), 4) for name, total in sums.items()}
        return figures
    finally:
        await client.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", type=Path, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--modes", nargs="+", default=[m.value for m in Mode], choices=[m.value for m in Mode]
    )
    parser.add_argument("--k", type=int, default=10, help="k of Recall@k (MRR and nDCG are @10)")
    parser.add_argument("--max-queries", type=int)
    parser.add_argument("--redis-url", help="use this Redis instead of starting a throwaway one")
    parser.add_argument("--scorer", default=Tuning().scorer.value, choices=[s.value for s in Scorer])
    parser.add_argument("--title-weight", type=float, default=2.0)
    parser.add_argument("--candidates", type=int, default=Tuning().candidates)
    parser.add_argument("--rrf", nargs=2, type=float, metavar=("VECTOR", "TEXT"), default=[1.0, 1.0])
    parser.add_argument("--rrf-k", type=int, default=Tuning().rrf_k)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--model-file",
        default="model.onnx",
        help="ONNX file in the model folder, e.g. model-int8.onnx (made by bench/embeddings.py)",
    )
    args = parser.parse_args(argv)
    dataset = load(args.dataset, args.split, args.max_queries)
    tuning = Tuning(
        scorer=Scorer(args.scorer),
        candidates=args.candidates,
        rrf_k=args.rrf_k,
        vector_weight=args.rrf[0],
        text_weight=args.rrf[1],
    )
    with redis_url(args.redis_url) as url:
        figures = asyncio.run(
            evaluate(
                dataset,
                url=url,
                modes=[Mode(m) for m in args.modes],
                tuning=tuning,
                title_weight=args.title_weight,
                k=args.k,
                embeddings=MiniLMEmbeddings(model_file=args.model_file),
            )
        )
    metrics = list(next(iter(figures.values())))
    print(f"{len(dataset.queries)} queries, {len(dataset.corpus)} documents")
    print(f"{'mode':8}" + "".join(f"{m:>11}" for m in metrics))
    for mode, values in figures.items():
        print(f"{mode:8}" + "".join(f"{values[m]:>11.4f}" for m in metrics))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
