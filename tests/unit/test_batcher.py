"""The embedding batcher: full batches across callers, order kept, interactive work first."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from lore_ingest.batcher import EmbeddingBatcher


class Recording(Embeddings):
    """Deterministic vectors; records every batch it is given and can be held at a gate."""

    def __init__(self) -> None:
        self.fake = DeterministicFakeEmbedding(size=8)
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.gate.wait(10)
        self.batches.append(list(texts))
        return self.fake.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.fake.embed_query(text)


async def test_concurrent_callers_share_batches_and_get_their_own_vectors_in_order() -> None:
    model = Recording()
    async with EmbeddingBatcher(model, max_batch=16) as batcher:
        requests = [[f"doc{d} chunk{c}" for c in range(3)] for d in range(5)]
        results = await asyncio.gather(*(batcher.embed(texts) for texts in requests))
    assert len(model.batches) == 1  # 15 texts from 5 callers in one model run
    for texts, vectors in zip(requests, results, strict=True):
        expected = np.asarray(model.fake.embed_documents(texts), dtype=np.float32)
        np.testing.assert_array_equal(vectors, expected)


async def test_large_request_is_split_into_batches_of_at_most_max_batch() -> None:
    model = Recording()
    async with EmbeddingBatcher(model, max_batch=4) as batcher:
        texts = [f"t{n}" for n in range(10)]
        vectors = await batcher.embed(texts)
    assert [len(b) for b in model.batches] == [4, 4, 2]
    np.testing.assert_array_equal(vectors, np.asarray(model.fake.embed_documents(texts), dtype=np.float32))


async def test_interactive_request_overtakes_a_queued_backlog() -> None:
    model = Recording()
    async with EmbeddingBatcher(model, max_batch=4) as batcher:
        model.gate.clear()  # hold the first batch so that the backlog queues up behind it
        backlog = asyncio.ensure_future(batcher.embed([f"bulk{n}" for n in range(40)]))
        await asyncio.sleep(0.05)
        urgent = asyncio.ensure_future(batcher.embed(["urgent"], interactive=True))
        await asyncio.sleep(0.05)
        model.gate.set()
        await urgent
        assert not backlog.done()
        await backlog
    position = next(n for n, b in enumerate(model.batches) if "urgent" in b)
    assert position == 1  # right after the batch that was already running


async def test_model_failure_reaches_every_caller_of_the_batch() -> None:
    class Broken(Recording):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise RuntimeError("model exploded")

    async with EmbeddingBatcher(Broken(), max_batch=8) as batcher:
        results = await asyncio.gather(batcher.embed(["a"]), batcher.embed(["b"]), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        with pytest.raises(RuntimeError):
            await batcher.embed(["c"])


class ShortOnce(Recording):
    """Answers its first batch with one vector too few (a broken model or endpoint), then works."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = super().embed_documents(texts)
        return vectors[:-1] if len(self.batches) == 1 else vectors


async def test_a_malformed_model_answer_fails_its_callers_and_the_worker_keeps_serving() -> None:
    model = ShortOnce()
    async with EmbeddingBatcher(model, max_batch=8) as batcher:
        with pytest.raises(ValueError, match="for 3 texts"):
            await asyncio.wait_for(batcher.embed(["a", "b", "c"]), timeout=5)
        vectors = await asyncio.wait_for(batcher.embed(["d", "e"]), timeout=5)
    expected = np.asarray(model.fake.embed_documents(["d", "e"]), dtype=np.float32)
    np.testing.assert_array_equal(vectors, expected)


class Meeting(Recording):
    """Each model call waits until ``parties`` calls are running at the same time (or times out)."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=5)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.barrier.wait()
        return super().embed_documents(texts)


async def test_workers_run_that_many_batches_at_the_same_time() -> None:
    model = Meeting(parties=2)
    async with EmbeddingBatcher(model, max_batch=2, workers=2) as batcher:
        texts = [f"t{n}" for n in range(4)]
        vectors = await batcher.embed(texts)
    # Two batches of two, both inside the model at once (one worker alone breaks the barrier).
    assert sorted(len(b) for b in model.batches) == [2, 2]
    np.testing.assert_array_equal(vectors, np.asarray(model.fake.embed_documents(texts), dtype=np.float32))
