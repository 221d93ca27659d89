"""Retrieval over Lore's chunk index: the service the routes use, and the chains' LangChain retriever."""

from __future__ import annotations

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from lore_core.contracts import Filters, RetrievalMode
from lore_core.index import VectorIndex
from lore_core.retriever import to_documents
from lore_core.search import Match, Mode, SearchRequest, Tuning


class Retrieval:
    """Embeds a question and ranks one tenant's chunks in the requested mode.

    Args:
        index: The chunk index.
        embeddings: The question encoder (the one ingestion used for the chunks).
        tuning: Ranking parameters (scorer, fusion weights, candidate depth).
        default_mode: The mode of a request that names none.
    """

    def __init__(
        self, *, index: VectorIndex, embeddings: Embeddings, tuning: Tuning, default_mode: Mode
    ) -> None:
        self._index = index
        self._embeddings = embeddings
        self._tuning = tuning
        self.default_mode = default_mode

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
        # The provider ingestion used (EMBEDDING_PROVIDER): a question is compared with chunk vectors
        # of the same model only. MiniLM's aembed_query runs in a thread; OpenAI's is async I/O.
        vector = np.asarray(await self._embeddings.aembed_query(question), dtype=np.float32)
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


class LoreRetriever(BaseRetriever):
    """Top-k chunks of one tenant, with provenance and scores in metadata.

    Metadata keys: document_id, title, source, chunk, score (cosine similarity to the question),
    rank_score (the mode's ranking score), mode.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retrieval: Retrieval
    tenant: str = "default"
    k: int = 4
    mode: RetrievalMode | None = None
    min_score: float | None = None
    mmr: bool = False
    filters: Filters | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        raise NotImplementedError("LoreRetriever is async-only; use ainvoke")

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        mode, matches = await self.retrieval.search(
            question=query,
            tenant=self.tenant,
            top_k=self.k,
            mode=self.mode,
            min_score=self.min_score,
            mmr=self.mmr,
            filters=self.filters,
        )
        return to_documents(matches, mode)
