"""`Retrieval` embeds a question once while it stays in the cache (`QUESTION_CACHE_SIZE`)."""

from __future__ import annotations

from langchain_core.embeddings import DeterministicFakeEmbedding

from lore_core.retriever import QUESTION_CACHE, Retrieval
from lore_core.search import IndexLayout, IndexOptions, Match, Mode, SearchRequest, Tuning


class CountingEmbedding(DeterministicFakeEmbedding):
    calls: int = 0

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return super().embed_query(text)


class NoChunks:
    """An index that finds nothing but remembers the vectors it was asked with."""

    def __init__(self) -> None:
        self.layout = IndexLayout.of("idx", "chunk:", 8, IndexOptions())
        self.vectors: list[list[float]] = []

    async def search(self, request: SearchRequest, tuning: Tuning | None = None) -> list[Match]:
        self.vectors.append(request.vector.tolist())
        return []


def _hits() -> float:
    return float(QUESTION_CACHE.labels("hit")._value.get())


async def test_a_repeated_question_skips_the_model_until_it_leaves_the_cache() -> None:
    model, index = CountingEmbedding(size=8), NoChunks()
    retrieval = Retrieval(
        index=index, embeddings=model, tuning=Tuning(), default_mode=Mode.VECTOR, cache_size=2
    )
    hits = _hits()
    for question in ("tides?", "tides?", "moon?", "tides?", "sun?", "moon?"):
        await retrieval.search(question=question, tenant="t", top_k=1)
    # tides, moon and sun computed; tides again from the cache; moon pushed out by sun (size 2).
    assert model.calls == 4
    assert _hits() - hits == 2
    assert index.vectors[0] == index.vectors[1] == index.vectors[3]


async def test_size_zero_caches_nothing() -> None:
    model = CountingEmbedding(size=8)
    retrieval = Retrieval(index=NoChunks(), embeddings=model, tuning=Tuning(), default_mode=Mode.VECTOR)
    for _ in range(3):
        await retrieval.search(question="tides?", tenant="t", top_k=1)
    assert model.calls == 3
