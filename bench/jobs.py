"""One ingestion job of many mixed files through the whole stack, next to the raw embedding speed.

Generates N files (default 1,000: text, Markdown, HTML, PDF, JSON, JSONL, by `bench/parse.py`'s
generator), starts a whole local stack on free ports (`bench/local_stack.py`), and:

1. parses and chunks the same files in this process, as lore-ingest does (`parse_file`,
   `chunk_document`, 800 / 120 characters), to know the chunk count and the parsing time;
2. raw: embeds those chunks in this process with the apps' model
   (`lore_core.embeddings.build_embeddings`, same settings), before and after the job; the job is
   compared with the mean of the two, so load that comes and goes on the machine biases neither.
   `--raw-chunks N` embeds an evenly spaced sample of N of them instead of all (each raw pass over
   all chunks of 1,000 files takes as long as the job itself);
3. the job: uploads every file in ONE multipart `POST /v1/jobs` to the gateway with the CLI's
   client (`lore_cli.client.Gateway`, what `lore ingest` sends) and polls `GET /v1/jobs/{id}`
   until the job is no longer `running`. Wall time runs from the request to the first poll that
   sees the job finished; documents/s and chunks/s follow.

Shares of the job's wall time, from lore-ingest's own counters (`/metrics`, read before and
after): parsing (`lore_job_file_parse_seconds`: lore-ingest parses the upload inside
`POST /v1/jobs`, before the workflow starts) and embedding (`lore_embedding_batch_seconds`); the
chunks it embedded (`lore_chunks_embedded_total`) are checked against the count made here.

Generating the files is not timed (PDFs take most of it: about a minute for 1,000 files).

Usage:
    python bench/jobs.py [--files 1000] [--seed 7] [--daprd .cache/dapr/bin/daprd]
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from ingest import raw_throughput
from langchain_text_splitters import RecursiveCharacterTextSplitter
from local_stack import DAPRD, local_stack
from parse import generate

from lore_cli.client import Gateway
from lore_core.chunking import chunk_document
from lore_core.contracts import DocumentIn
from lore_core.formats import parse_file

TENANT = "bench-jobs"
# lore-ingest's counters read around the job (Prometheus text format, unlabelled series).
COUNTERS = (
    "lore_job_file_parse_seconds_sum",
    "lore_embedding_batch_seconds_sum",
    "lore_chunks_embedded_total",
)


def counters(ingest: str) -> dict[str, float]:
    values = dict.fromkeys(COUNTERS, 0.0)
    for line in httpx.get(f"{ingest}/metrics", timeout=30).text.splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    return values


def parse_and_chunk(files: list[tuple[str, bytes]]) -> tuple[list[DocumentIn], list[str], float]:
    """The files' documents and chunk texts, and the seconds spent parsing (chunking not counted)."""
    parse_file(files[0][1], filename=files[0][0])  # the parsers' lazy imports are not throughput
    documents: list[DocumentIn] = []
    started = time.perf_counter()
    for name, data in files:
        documents.extend(parse_file(data, filename=name, tenant=TENANT))
    parse_s = time.perf_counter() - started
    splitter = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=120)
    chunks = [c.text for d in documents for c in chunk_document(d, splitter)]
    return documents, chunks, parse_s


def run_job(gateway: str, files: list[tuple[str, bytes]], poll: float, timeout: float) -> dict[str, Any]:
    """Submits the files as one job with the CLI's client and follows it; returns its last status
    with the timings."""
    with Gateway(gateway) as client:
        started = time.monotonic()
        job = client.submit_job(TENANT, files)
        submitted = time.monotonic()
        deadline = started + timeout
        while job["state"] == "running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job['job_id']} still running after {timeout} s: {job['counts']}")
            time.sleep(poll)
            job = client.job(TENANT, job["job_id"])
        done = time.monotonic()
    return {**job, "submit_s": submitted - started, "wall_s": done - started}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between status polls")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the job may take")
    parser.add_argument(
        "--raw-chunks", type=int, default=0, help="chunks in the raw embedding sample (0: all of them)"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=600, help="seconds the stack may take to start (loaded hosts)"
    )
    parser.add_argument("--daprd", default=str(DAPRD))
    args = parser.parse_args()
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the stack is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    t0 = time.perf_counter()
    files = generate(args.files, args.seed)
    size = sum(len(data) for _, data in files)
    print(
        f"generated {len(files)} files ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f} s", flush=True
    )
    documents, chunks, parse_s = parse_and_chunk(files)
    print(
        f"in process: {len(documents)} documents, {len(chunks)} chunks, parsed in {parse_s:.1f} s", flush=True
    )

    sample = chunks[:: max(1, len(chunks) // args.raw_chunks)] if args.raw_chunks else chunks
    raw_before = raw_throughput(sample)
    print(f"raw embedding before the job ({len(sample)} chunks): {raw_before:.1f} chunks/s", flush=True)
    with local_stack(Path(args.daprd), timeout=args.start_timeout) as stack:
        before = counters(stack.url("lore-ingest"))
        job = run_job(stack.url("lore-gateway"), files, args.poll, args.timeout)
        after = counters(stack.url("lore-ingest"))
        print(f"job {job['job_id']} {job['state']} in {job['wall_s']:.1f} s: {job['counts']}", flush=True)
        raw_after = raw_throughput(sample)
    raw = (raw_before + raw_after) / 2

    wall, submit = job["wall_s"], job["submit_s"]
    counts = job["counts"]
    done = counts["indexed"] + counts["unchanged"]
    docs_s, chunks_s = job["total"] / wall, len(chunks) / wall
    ingest_parse, ingest_embed, embedded = (after[c] - before[c] for c in COUNTERS)
    print(f"\n{len(files)} files ({size / 1e6:.1f} MB) -> {job['total']} documents -> {len(chunks)} chunks")
    print(f"raw embedding measured on {len(sample)} of the {len(chunks)} chunks, before and after the job")
    print(
        f"job outcome: {job['state']}, indexed {counts['indexed']}, unchanged {counts['unchanged']}, "
        f"failed {counts['failed']} ({done} of {len(documents)} parsed documents done)\n"
    )
    rows = [
        ("job, end to end (one POST /v1/jobs)", wall, docs_s, chunks_s, f"{chunks_s / raw:.2f}"),
        ("  of which POST (upload+parse+store)", submit, job["total"] / submit, None, ""),
        (
            "  parsing in lore-ingest (sum per file)",
            ingest_parse,
            job["total"] / ingest_parse if ingest_parse else None,
            None,
            "",
        ),
        (
            "  embedding in lore-ingest (batches)",
            ingest_embed,
            None,
            embedded / ingest_embed if ingest_embed else None,
            "",
        ),
        ("parse only, in this process (same files)", parse_s, len(documents) / parse_s, None, ""),
        # Seconds the raw model would need for all the job's chunks at the measured speed.
        ("raw embedding, mean before/after", len(chunks) / raw, None, raw, "1.00"),
        ("  raw before the job", len(chunks) / raw_before, None, raw_before, ""),
        ("  raw after the job", len(chunks) / raw_after, None, raw_after, ""),
    ]
    print(f"{'':<40}{'seconds':>9}{'docs/s':>9}{'chunks/s':>10}{'x raw':>7}")
    for label, seconds, per_doc, per_chunk, ratio in rows:
        docs_text = f"{per_doc:9.1f}" if per_doc is not None else f"{'':>9}"
        chunks_text = f"{per_chunk:10.1f}" if per_chunk is not None else f"{'':>10}"
        print(f"{label:<40}{seconds:9.1f}{docs_text}{chunks_text}{ratio:>7}")
    print(
        f"\nshare of the job's wall time: parsing {100 * ingest_parse / wall:.1f} %, embedding "
        f"{100 * ingest_embed / wall:.1f} % (lore-ingest's counters); the POST (upload, parse, store) "
        f"{100 * submit / wall:.1f} %"
    )
    print(f"chunks embedded by lore-ingest: {embedded:.0f} (counted here: {len(chunks)})")


if __name__ == "__main__":
    main()
