"""Retrieval over Lore's chunk index: `Retrieval` (embed a question, rank one tenant's chunks) and
`LoreRetriever`, the LangChain retriever over it.

lore-query's routes and chains use a `Retrieval` over the index the app keeps open. Any other
program that can reach the Redis builds `LoreRetriever(redis_url=..., layout=..., embeddings=...)`:
the same retrieval as `POST /v1/retrieve` (`lore_core.search.ChunkSearch`: modes, filters,
threshold, MMR) with the caller's embedding model, which must be the one the chunks were embedded
with. Such a retriever opens a Redis connection per call in the event loop that runs it, so the
sync path (`invoke`, which runs the async search in a fresh loop) and the async path (`ainvoke`)
never share a connection across loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, Self

import numpy as np
from cachetools import LRUCache
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from numpy.typing import NDArray
from prometheus_client import Counter
from pydantic import ConfigDict, Field, SecretStr, model_validator

from lore_core.contracts import Filters, RetrievalMode
from lore_core.index import redis_client
from lore_core.search import ChunkSearch, IndexLayout, Match, Mode, SearchRequest, Tuning

QUESTION_CACHE = Counter(
    "lore_query_embedding_cache",
    "Question embeddings served from the cache (hit) or computed (miss).",
    ["result"],
)


class SearchIndex(Protocol):
    """What `Retrieval` needs of an index (`lore_core.index.VectorIndex` is one)."""

    @property
    def layout(self) -> IndexLayout: ...

    async def search(self, request: SearchRequest, tuning: Tuning | None = None) -> list[Match]: ...


class _ConnectionPerCall:
    """A `SearchIndex` that opens a Redis connection for each search, in the caller's loop."""

    def __init__(self, url: str, password: str | None, layout: IndexLayout) -> None:
        self._url = url
        self._password = password
        self._layout = layout

    @property
    def layout(self) -> IndexLayout:
        return self._layout

    async def search(self, request: SearchRequest, tuning: Tuning | None = None) -> list[Match]:
        client = redis_client(self._url, self._password)
        try:
            return await ChunkSearch(client, self._layout, tuning).run(request)
        finally:
            await client.aclose()


class Retrieval:
    """Embeds a question and ranks one tenant's chunks in the requested mode.

    Args:
        index: The chunk index.
        embeddings: The question encoder (the one ingestion used for the chunks).
        tuning: Ranking parameters (scorer, fusion weights, candidate depth).
        default_mode: The mode of a request that names none.
        cache_size: Question embeddings kept (least recently used out); 0 keeps none. A question
            asked again (a retry, a chat turn sent twice, an evaluation run) skips the model.
    """

    def __init__(
        self,
        *,
        index: SearchIndex,
        embeddings: Embeddings,
        tuning: Tuning,
        default_mode: Mode,
        cache_size: int = 0,
    ) -> None:
        self._index = index
        self._embeddings = embeddings
        self._tuning = tuning
        self.default_mode = default_mode
        self._vectors: LRUCache[str, NDArray[np.float32]] | None = None
        if cache_size:
            self._vectors = LRUCache(cache_size)

    async def _vector(self, question: str) -> NDArray[np.float32]:
        cached = self._vectors.get(question) if self._vectors is not None else None
        if cached is not None:
            QUESTION_CACHE.labels("hit").inc()
            return cached
        # The provider ingestion used (EMBEDDING_PROVIDER): a question is compared with chunk vectors
        # of the same model only. MiniLM's aembed_query runs in a thread; OpenAI's is async I/O.
        vector = np.asarray(await self._embeddings.aembed_query(question), dtype=np.float32)
        if self._vectors is not None:
            QUESTION_CACHE.labels("miss").inc()
            self._vectors[question] = vector
        return vector

    async def search(
        self,
        *,
        question: str,
        tenant: str,
        top_k: int,
        mode: RetrievalMode | None = None,
        min_score: float | None = None,
        mmr: bool = False,
        filters: Filters | None = None,
    ) -> tuple[Mode, list[Match]]:
        """The top_k chunks, best first, and the mode that ranked them.

        Raises:
            FilterError: ``filters`` name a field the index does not declare, or a condition of the
                wrong type (checked before the question is embedded).
        """
        self.check_filters(filters)
        chosen = Mode(mode) if mode else self.default_mode
        vector = await self._vector(question)
        request = SearchRequest(
            tenant=tenant,
            question=question,
            vector=vector,
            mode=chosen,
            k=top_k,
            min_score=min_score,
            mmr=mmr,
            filters=filters,
        )
        return chosen, await self._index.search(request, self._tuning)

    def check_filters(self, filters: Filters | None) -> None:
        """Raises `FilterError` when ``filters`` do not fit the index schema."""
        self._index.layout.filter_expression(filters)


def to_documents(matches: Sequence[Match], mode: Mode) -> list[Document]:
    """Chunks as LangChain documents; metadata: document_id, title, source, chunk, page and section
    (None when unknown), score (cosine similarity to the question), rank_score (the mode's ranking
    score), mode."""
    return [
        Document(
            page_content=m.text,
            metadata={
                "document_id": m.document_id,
                "title": m.title,
                "source": m.source,
                "chunk": m.chunk,
                "page": m.page,
                "section": m.section,
                "score": m.similarity,
                "rank_score": m.score,
                "mode": mode.value,
            },
        )
        for m in matches
    ]


class LoreRetriever(BaseRetriever):
    """Top-k chunks of one tenant from Lore's index (sync and async).

    Give either ``retrieval`` (an app's, over an index it keeps open) or ``redis_url``, ``layout``
    and ``embeddings`` (a connection per call).

    Args:
        retrieval: The retrieval to run.
        redis_url: The Redis holding the index.
        redis_password: Its password, if any.
        layout: The index layout (name, prefix, dimension, filterable metadata), as Lore's apps use.
        embeddings: The model the chunks were embedded with.
        tenant: Whose chunks are searched.
        k: Chunks returned; `invoke(query, k=3)` overrides it per call.
        mode: `vector`, `text` or `hybrid`; None: the retrieval's default (hybrid for a URL).
        min_score: Drop chunks less similar than this (cosine).
        mmr: Diversify with maximal marginal relevance.
        filters: Conditions on source, collection, document id and declared metadata.
        tuning: Ranking parameters (with ``redis_url``; a given ``retrieval`` has its own).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retrieval: Retrieval | None = None
    redis_url: str | None = None
    redis_password: SecretStr | None = None
    layout: IndexLayout | None = None
    embeddings: Embeddings | None = None
    tenant: str = "default"
    k: int = Field(default=4, ge=1, le=100)
    mode: RetrievalMode | None = None
    min_score: float | None = None
    mmr: bool = False
    filters: Filters | None = None
    tuning: Tuning = Field(default_factory=Tuning)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        standalone = (self.redis_url, self.layout, self.embeddings)
        if self.retrieval is None and None in standalone:
            raise ValueError("give `retrieval`, or `redis_url`, `layout` and `embeddings`")
        if self.retrieval is not None and any(v is not None for v in standalone):
            raise ValueError("give `retrieval` or `redis_url`/`layout`/`embeddings`, not both")
        return self

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._search(query, **kwargs))
        # Called synchronously from inside a running loop: that loop cannot be blocked on, so the
        # search runs in a loop of its own on another thread.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self._search(query, **kwargs)).result()

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return await self._search(query, **kwargs)

    def _retrieval(self) -> Retrieval:
        if self.retrieval is not None:
            return self.retrieval
        assert self.redis_url is not None and self.layout is not None and self.embeddings is not None
        password = self.redis_password.get_secret_value() if self.redis_password else None
        return Retrieval(
            index=_ConnectionPerCall(self.redis_url, password, self.layout),
            embeddings=self.embeddings,
            tuning=self.tuning,
            default_mode=Mode.HYBRID,
        )

    async def _search(self, query: str, **kwargs: Any) -> list[Document]:
        options = self.model_copy(update=kwargs) if kwargs else self
        filters = options.filters
        mode, matches = await options._retrieval().search(
            question=query,
            tenant=options.tenant,
            top_k=options.k,
            mode=options.mode,
            min_score=options.min_score,
            mmr=options.mmr,
            filters=Filters.model_validate(filters) if isinstance(filters, dict) else filters,
        )
        return to_documents(matches, mode)
