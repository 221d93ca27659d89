"""A LangChain retriever over Lore's Redis vector index."""

from __future__ import annotations

import asyncio

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from lore_core.embeddings import MiniLMEmbeddings
from lore_core.index import VectorIndex


class LoreRetriever(BaseRetriever):
    """Top-k chunks of one tenant by cosine similarity, with score and provenance in metadata.

    Metadata keys: document_id, title, source, chunk, score.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: VectorIndex
    embeddings: MiniLMEmbeddings
    tenant: str = "default"
    k: int = 4
    min_score: float = 0.0

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        raise NotImplementedError("LoreRetriever is async-only; use ainvoke")

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        vectors = await asyncio.to_thread(self.embeddings.embed, [query])
        hits = await self.index.search(tenant=self.tenant, vector=vectors[0], k=self.k)
        return [
            Document(
                page_content=hit.text,
                metadata={
                    "document_id": hit.document_id,
                    "title": hit.title,
                    "source": hit.source,
                    "chunk": hit.chunk,
                    "score": hit.score,
                },
            )
            for hit in hits
            if hit.score >= self.min_score
        ]
