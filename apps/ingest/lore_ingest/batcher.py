"""Coalesces the chunks of concurrent ingestions into full embedding batches.

Each ingestion event carries a few chunks; embedding them one event at a time leaves the model
running on half-empty, padded batches. Dapr's bulk subscribe would batch events of one topic only,
and not the synchronous `POST /documents` calls, so lore-ingest batches in the app instead: every
caller hands its texts to one `EmbeddingBatcher`, whose single worker runs the model on up to
`max_batch` texts at a time, taken from the interactive lane first. A synchronous ingestion
therefore waits for at most the batch that is running, however long the event backlog is.
With `workers` > 1, that many batches run at once (each in its own thread; give each run fewer
intra-op threads, `EMBEDDING_THREADS`, so that together they fill the cores).

No maintained library does asyncio micro-batching with priorities (the candidates on PyPI are
unmaintained single-author packages), and the whole mechanism is one queue and one task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Self

import numpy as np
from langchain_core.embeddings import Embeddings
from numpy.typing import NDArray
from opentelemetry import trace
from prometheus_client import Counter, Histogram

log = logging.getLogger(__name__)
# The process's tracer provider (`lore_core.runtime.serve` installs the app's).
tracer = trace.get_tracer(__name__)

BATCH_SIZE = Histogram(
    "lore_embedding_batch_size",
    "Texts per embedding batch run by lore-ingest.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
BATCH_SECONDS = Histogram("lore_embedding_batch_seconds", "Wall time of one embedding batch.")
CHUNKS_EMBEDDED = Counter("lore_chunks_embedded_total", "Chunks embedded by lore-ingest.")


@dataclass
class _Request:
    texts: list[str]
    result: NDArray[np.float32] | None = None
    remaining: int = 0
    future: asyncio.Future[NDArray[np.float32]] = field(default_factory=asyncio.Future)
    # The caller's span: a batch serves several callers' traces, so its span links to each of them.
    caller: trace.SpanContext = field(default_factory=lambda: trace.get_current_span().get_span_context())


@dataclass
class _Piece:
    request: _Request
    start: int
    end: int


class EmbeddingBatcher:
    """Runs one embedding model for many concurrent callers.

    Args:
        embeddings: Any LangChain `Embeddings`; `embed_documents` runs in a worker thread.
        max_batch: Texts per model call. A request larger than this is split into pieces, so an
            interactive request never waits behind a whole large document.
        linger: Seconds a worker waits for more requests before running a partial batch.
        workers: Batches run at the same time, each in its own thread (the model must allow
            concurrent calls, as onnxruntime sessions do).
    """

    def __init__(
        self, embeddings: Embeddings, *, max_batch: int = 64, linger: float = 0.005, workers: int = 1
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._embeddings = embeddings
        self._max_batch = max_batch
        self._linger = linger
        self._workers = workers
        self._lanes: tuple[deque[_Piece], deque[_Piece]] = (deque(), deque())
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"embedding-batcher-{n}") for n in range(self._workers)
            ]

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for lane in self._lanes:
            for piece in lane:
                if not piece.request.future.done():
                    piece.request.future.set_exception(RuntimeError("embedding batcher stopped"))
            lane.clear()

    @property
    def waiting(self) -> int:
        """Texts queued for embedding (both lanes)."""
        return sum(p.end - p.start for lane in self._lanes for p in lane)

    async def embed(self, texts: list[str], *, interactive: bool = False) -> NDArray[np.float32]:
        """Embeds ``texts`` (in order) and returns a ``(len(texts), dimension)`` float32 array."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if not self._tasks:
            raise RuntimeError("EmbeddingBatcher.start() was not called")
        request = _Request(texts=texts, remaining=len(texts))
        lane = self._lanes[0 if interactive else 1]
        for start in range(0, len(texts), self._max_batch):
            lane.append(_Piece(request, start, min(start + self._max_batch, len(texts))))
        self._wake.set()
        return await request.future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while any(self._lanes):
                if self._linger:
                    await asyncio.sleep(self._linger)
                batch = self._take()
                if any(self._lanes):
                    self._wake.set()  # more work than one batch: wake an idle worker for it
                await self._embed(batch)
                # Let callers whose results just arrived enqueue their next work before the next
                # batch is put together.
                await asyncio.sleep(0)

    def _take(self) -> list[_Piece]:
        batch: list[_Piece] = []
        size = 0
        for lane in self._lanes:
            while lane and size < self._max_batch:
                piece = lane[0]
                if piece.request.future.done():  # caller went away (cancelled)
                    lane.popleft()
                    continue
                room = self._max_batch - size
                if piece.end - piece.start > room:
                    batch.append(_Piece(piece.request, piece.start, piece.start + room))
                    piece.start += room
                    size += room
                    break
                batch.append(lane.popleft())
                size += piece.end - piece.start
        return batch

    async def _embed(self, batch: list[_Piece]) -> None:
        """Runs one batch and hands every caller its rows. Whatever goes wrong (the model raises, or
        answers with the wrong shape) fails this batch's callers only: the worker goes on."""
        if not batch:
            return
        texts = [t for piece in batch for t in piece.request.texts[piece.start : piece.end]]
        started = time.perf_counter()
        try:
            # Keyed by ids: a SpanContext is unhashable (its TraceState is not).
            callers = {
                (c.trace_id, c.span_id): c for c in (p.request.caller for p in batch) if c.is_valid
            }.values()
            # A root span of its own (the batch belongs to no single request), linked to the span of
            # every ingestion it serves: a trace shows which batch embedded its chunks, and when.
            with tracer.start_as_current_span(
                "embed batch",
                context=trace.set_span_in_context(trace.INVALID_SPAN),
                links=[trace.Link(c) for c in callers],
                attributes={"lore.batch.texts": len(texts), "lore.batch.callers": len(batch)},
            ):
                vectors = np.asarray(
                    await asyncio.to_thread(self._embeddings.embed_documents, texts), dtype=np.float32
                )
            if vectors.ndim != 2 or vectors.shape[0] != len(texts):
                raise ValueError(f"the model returned {vectors.shape} for {len(texts)} texts")
            BATCH_SECONDS.observe(time.perf_counter() - started)
            BATCH_SIZE.observe(len(texts))
            CHUNKS_EMBEDDED.inc(len(texts))
            offset = 0
            for piece in batch:
                count = piece.end - piece.start
                request = piece.request
                if request.result is None:
                    request.result = np.empty((len(request.texts), vectors.shape[1]), dtype=np.float32)
                request.result[piece.start : piece.end] = vectors[offset : offset + count]
                offset += count
                request.remaining -= count
                if request.remaining == 0 and not request.future.done():
                    request.future.set_result(request.result)
        except Exception as exc:
            log.exception("embedding batch of %d texts failed", len(texts))
            for piece in batch:
                if not piece.request.future.done():
                    piece.request.future.set_exception(exc)
