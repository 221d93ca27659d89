"""A LangChain retriever over Lore's chunk index, for any program that can reach its Redis.

`LoreRetriever` runs the same retrieval as `POST /v1/retrieve` (`lore_core.search.ChunkSearch`:
modes, filters, threshold, MMR) with the caller's embedding model, which must be the one the chunks
were embedded with. Each call opens its own Redis connection in the event loop that runs it, so
the sync path (`invoke`, which runs the async search in a fresh loop) and the async path
(`ainvoke`) never share a connection across loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, SecretStr

from lore_core.contracts import Filters, RetrievalMode
from lore_core.index import redis_client
from lore_core.search import ChunkSearch, IndexLayout, Match, Mode, SearchRequest, Tuning


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

    Args:
        redis_url: The Redis holding the index.
        redis_password: Its password, if any.
        layout: The index layout (name, prefix, dimension, filterable metadata), as Lore's apps use.
        embeddings: The model the chunks were embedded with.
        tenant: Whose chunks are searched.
        k: Chunks returned; `invoke(query, k=3)` overrides it per call.
        mode: `vector`, `text` or `hybrid`.
        min_score: Drop chunks less similar than this (cosine).
        mmr: Diversify with maximal marginal relevance.
        filters: Conditions on source, collection, document id and declared metadata.
        tuning: Ranking parameters.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    redis_url: str
    redis_password: SecretStr | None = None
    layout: IndexLayout
    embeddings: Embeddings
    tenant: str = "default"
    k: int = Field(default=4, ge=1, le=100)
    mode: RetrievalMode = "hybrid"
    min_score: float | None = None
    mmr: bool = False
    filters: Filters | None = None
    tuning: Tuning = Field(default_factory=Tuning)

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

    async def _search(self, query: str, **kwargs: Any) -> list[Document]:
        options = self.model_copy(update=kwargs) if kwargs else self
        vector = np.asarray(await options.embeddings.aembed_query(query), dtype=np.float32)
        mode = Mode(options.mode)
        request = SearchRequest(
            tenant=options.tenant,
            question=query,
            vector=vector,
            mode=mode,
            k=options.k,
            min_score=options.min_score,
            mmr=options.mmr,
            filters=Filters.model_validate(options.filters)
            if isinstance(options.filters, dict)
            else options.filters,
        )
        password = options.redis_password.get_secret_value() if options.redis_password else None
        client = redis_client(options.redis_url, password)
        try:
            matches = await ChunkSearch(client, options.layout, options.tuning).run(request)
        finally:
            await client.aclose()
        return to_documents(matches, mode)
