"""Turns a document into indexed chunks and keeps its status in the Dapr state store."""

from __future__ import annotations

import asyncio
import logging

from langchain_text_splitters import RecursiveCharacterTextSplitter

from lore_core.contracts import DocumentIn, DocumentState, DocumentStatus
from lore_core.dapr import Sidecar
from lore_core.embeddings import MiniLMEmbeddings
from lore_core.index import Chunk, VectorIndex

log = logging.getLogger(__name__)


class DocumentTooLargeError(ValueError):
    pass


def status_key(tenant: str, document_id: str) -> str:
    """State-store key of a document's status: `status:{tenant}:{document_id}`."""
    return f"status:{tenant}:{document_id}"


class IngestService:
    """Splits, embeds and indexes documents.

    Indexing is idempotent: the same document (same id and text) ingested twice, or one event
    delivered twice, leaves exactly one copy of each chunk (see `VectorIndex.replace_document`).
    """

    def __init__(
        self,
        *,
        sidecar: Sidecar,
        index: VectorIndex,
        embeddings: MiniLMEmbeddings,
        statestore: str,
        max_document_bytes: int,
        chunk_size: int,
        chunk_overlap: int,
    ) -> None:
        self._sidecar = sidecar
        self._index = index
        self._embeddings = embeddings
        self._statestore = statestore
        self._max_bytes = max_document_bytes
        self._splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)

    def check_size(self, document: DocumentIn) -> None:
        size = len(document.text.encode("utf-8"))
        if size > self._max_bytes:
            raise DocumentTooLargeError(f"document text is {size} bytes; the limit is {self._max_bytes}")

    async def ingest(self, document: DocumentIn) -> DocumentStatus:
        """Indexes ``document`` and records its status; returns the final status.

        Raises:
            DocumentTooLargeError: the text is over the configured limit (nothing is written).
            DaprError, redis errors: transient failures; the previous version stays indexed.
        """
        self.check_size(document)
        document_id = document.document_id()
        texts = [t for t in self._splitter.split_text(document.text) if t.strip()]
        chunks = [Chunk(text=t, index=n) for n, t in enumerate(texts)]
        vectors = await asyncio.to_thread(self._embeddings.embed, texts)
        result = await self._index.replace_document(
            tenant=document.tenant,
            document_id=document_id,
            title=document.title,
            source=document.source,
            chunks=chunks,
            vectors=vectors,
        )
        status = DocumentStatus(
            document_id=document_id,
            tenant=document.tenant,
            state=DocumentState.INDEXED,
            title=document.title,
            chunks=result.chunks,
        )
        await self._sidecar.save_state(
            self._statestore, status_key(document.tenant, document_id), status.model_dump(mode="json")
        )
        log.info(
            "indexed %s/%s: %d chunks%s",
            document.tenant,
            document_id,
            result.chunks,
            " (unchanged)" if result.unchanged else "",
        )
        return status

    async def record_failure(self, document: DocumentIn, reason: str) -> None:
        """Marks a document that will never be indexed as failed, so its producer can see why.

        A document that is already indexed keeps its status (and its chunks): a later bad version
        does not hide the good one.
        """
        key = status_key(document.tenant, document.document_id())
        current, _ = await self._sidecar.get_state(self._statestore, key)
        if current is not None and current.get("state") == DocumentState.INDEXED:
            return
        status = DocumentStatus(
            document_id=document.document_id(),
            tenant=document.tenant,
            state=DocumentState.FAILED,
            title=document.title,
            error=reason,
        )
        await self._sidecar.save_state(self._statestore, key, status.model_dump(mode="json"))

    async def delete(self, tenant: str, document_id: str) -> int | None:
        """Removes a document's chunks and status; returns the chunk count, None if unknown."""
        key = status_key(tenant, document_id)
        current, _ = await self._sidecar.get_state(self._statestore, key)
        removed = await self._index.delete_document(tenant=tenant, document_id=document_id)
        if current is None and removed == 0:
            return None
        await self._sidecar.delete_state(self._statestore, key)
        return removed

    async def status(self, tenant: str, document_id: str) -> DocumentStatus | None:
        value, _ = await self._sidecar.get_state(self._statestore, status_key(tenant, document_id))
        return None if value is None else DocumentStatus.model_validate(value)
