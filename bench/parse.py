"""Parsing throughput of `lore_core.formats` on a mixed load, next to embedding the same chunks.

Generates N files (default 1,000) spread evenly over the accepted formats: plain text, Markdown
with headers, HTML pages with navigation, scripts and a footer, PDFs of a few pages, JSON arrays and
JSONL files of several records. Then, in one run:

1. parses every file with `parse_file` (timed per format),
2. cuts the documents into chunks as lore-ingest does (`chunk_document`, 800 / 120 characters),
3. embeds all those chunks with Lore's local model (`lore_core.embeddings.MiniLMEmbeddings`).

It prints documents/s and chunks/s of each step and the share of parsing in parse + chunk + embed,
which is what a job of these files costs lore-ingest's CPU apart from Redis and Dapr. Generating
the files is not timed.

Usage:
    python bench/parse.py [--files 1000] [--seed 7] [--batch-size 32] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable

from fpdf import FPDF
from langchain_text_splitters import RecursiveCharacterTextSplitter

from lore_core.chunking import chunk_document
from lore_core.contracts import DocumentIn
from lore_core.embeddings import MiniLMEmbeddings
from lore_core.formats import parse_file

_VOCABULARY = [
    word
    for line in (
        "the a of and to in is that for on with as by this are from or an which when can has more",
        "if will their time about into only other some could these two may then first any like over",
        "after where also made many before must through back much should well down because each",
        "those how system service request document index vector query cluster sidecar message",
        "retrieval model answer question search storage network latency throughput deployment",
        "configuration pipeline component runtime security policy customer invoice contract release",
        "engineer schedule report warranty refund shipping account password backup restore upgrade",
        "license billing support",
    )
    for word in line.split()
]


class Corpus:
    """Reproducible pseudo-English text."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def sentence(self) -> str:
        words = self._random.choices(_VOCABULARY, k=self._random.randint(8, 20))
        return " ".join(words).capitalize() + "."

    def paragraph(self, sentences: int = 5) -> str:
        return " ".join(self.sentence() for _ in range(sentences))

    def title(self) -> str:
        return " ".join(self._random.choices(_VOCABULARY, k=3)).title()

    def pick(self, low: int, high: int) -> int:
        return self._random.randint(low, high)


def _text(corpus: Corpus) -> bytes:
    return "\n\n".join(corpus.paragraph() for _ in range(corpus.pick(2, 5))).encode()


def _markdown(corpus: Corpus) -> bytes:
    parts = [f"# {corpus.title()}", corpus.paragraph()]
    for _ in range(corpus.pick(2, 4)):
        parts += [f"## {corpus.title()}", corpus.paragraph()]
        if corpus.pick(0, 1):
            parts += [f"### {corpus.title()}", corpus.paragraph(3)]
    return "\n\n".join(parts).encode()


def _html(corpus: Corpus) -> bytes:
    sections = "".join(
        f"<h2>{corpus.title()}</h2><p>{corpus.paragraph()}</p><p>{corpus.paragraph(3)}</p>"
        for _ in range(corpus.pick(2, 4))
    )
    links = "".join(f'<li><a href="/{n}">{corpus.title()}</a></li>' for n in range(8))
    return (
        f"<!doctype html><html><head><title>{corpus.title()}</title>"
        "<script>window.analytics = {id: 42};</script><style>p {margin: 0}</style></head><body>"
        f"<nav><ul>{links}</ul></nav><main><article><h1>{corpus.title()}</h1>{sections}</article></main>"
        f"<footer><p>Copyright 2026. {corpus.sentence()}</p></footer></body></html>"
    ).encode()


def _pdf(corpus: Corpus) -> bytes:
    pdf = FPDF()
    pdf.set_title(corpus.title())
    pdf.set_font("helvetica", size=11)
    for _ in range(corpus.pick(2, 4)):
        pdf.add_page()
        pdf.multi_cell(0, 6, "\n\n".join(corpus.paragraph() for _ in range(3)))
    return bytes(pdf.output())


def _records(corpus: Corpus) -> list[dict[str, object]]:
    return [
        {"text": corpus.paragraph(3), "title": corpus.title(), "lang": "en", "rank": n, "tags": ["a", "b"]}
        for n in range(corpus.pick(3, 8))
    ]


def _json(corpus: Corpus) -> bytes:
    return json.dumps(_records(corpus)).encode()


def _jsonl(corpus: Corpus) -> bytes:
    return "\n".join(json.dumps(r) for r in _records(corpus)).encode()


GENERATORS: dict[str, Callable[[Corpus], bytes]] = {
    "txt": _text,
    "md": _markdown,
    "html": _html,
    "pdf": _pdf,
    "json": _json,
    "jsonl": _jsonl,
}


def generate(count: int, seed: int) -> list[tuple[str, bytes]]:
    corpus = Corpus(seed)
    kinds = list(GENERATORS)
    return [
        (f"file-{n:05d}.{kinds[n % len(kinds)]}", GENERATORS[kinds[n % len(kinds)]](corpus))
        for n in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    started = time.perf_counter()
    files = generate(args.files, args.seed)
    size = sum(len(data) for _, data in files)
    print(f"generated {len(files)} files ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
    model = MiniLMEmbeddings(batch_size=args.batch_size, threads=args.threads)
    model.embed(["warm up the session"])  # first-run allocation is not throughput
    parse_file(files[0][1], filename=files[0][0])  # nor are the parsers' lazy imports

    per_format: dict[str, float] = defaultdict(float)
    per_format_docs: dict[str, int] = defaultdict(int)
    documents: list[DocumentIn] = []
    for name, data in files:
        kind = name.rsplit(".", 1)[1]
        t0 = time.perf_counter()
        parsed = parse_file(data, filename=name)
        per_format[kind] += time.perf_counter() - t0
        per_format_docs[kind] += len(parsed)
        documents.extend(parsed)
    parse_s = sum(per_format.values())
    print(
        f"parsed {len(files)} files into {len(documents)} documents in {parse_s:.1f} s; embedding...",
        flush=True,
    )

    splitter = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=120)
    t0 = time.perf_counter()
    chunks = [c.text for d in documents for c in chunk_document(d, splitter)]
    chunk_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    vectors = model.embed(chunks)
    embed_s = time.perf_counter() - t0
    assert vectors.shape[0] == len(chunks)

    total = parse_s + chunk_s + embed_s
    print(f"\n{'format':<7}{'files':>7}{'docs':>7}{'parse s':>10}{'ms/file':>9}{'files/s':>9}")
    for kind in GENERATORS:
        count = sum(1 for name, _ in files if name.endswith(f".{kind}"))
        seconds = per_format[kind]
        print(
            f"{kind:<7}{count:>7}{per_format_docs[kind]:>7}{seconds:>10.2f}"
            f"{1000 * seconds / max(count, 1):>9.1f}{count / seconds if seconds else 0:>9.0f}"
        )
    print(
        f"\n{len(files)} files -> {len(documents)} documents -> {len(chunks)} chunks\n"
        f"parse:  {parse_s:7.2f} s  {len(files) / parse_s:8.0f} files/s  "
        f"{len(documents) / parse_s:8.0f} docs/s\n"
        f"chunk:  {chunk_s:7.2f} s  {len(chunks) / chunk_s:8.0f} chunks/s\n"
        f"embed:  {embed_s:7.2f} s  {len(chunks) / embed_s:8.1f} chunks/s (raw MiniLM, same chunks)\n"
        f"total:  {total:7.2f} s  {len(documents) / total:8.1f} docs/s  {len(chunks) / total:8.1f} chunks/s\n"
        f"share of parsing: {100 * parse_s / total:.1f} % (chunking {100 * chunk_s / total:.1f} %, "
        f"embedding {100 * embed_s / total:.1f} %)"
    )


if __name__ == "__main__":
    main()
