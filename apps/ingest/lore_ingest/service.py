"""Turns a document into indexed chunks and keeps its status in the Dapr state store.

Delivery is at least once (a redelivered event, a retried call, two replicas); the effect is
exactly once. Three guards make it so:

* the status record (Dapr state, key `status:{tenant}:{document_id}`) carries the document's
  version number (`sequence`) and content hash (`revision`), and every transition is written with
  the ETag of the record it was decided on (first-write-wins), so a transition decided on stale
  data is re-decided instead of overwriting a newer one: last version wins;
* the index manifest is compared with the content hash before any embedding, so an unchanged or
  already indexed version costs one state read (or one more Redis read), never a forward pass;
* deliveries of the same version that arrive while it is being processed in this process share
  that work instead of repeating it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter
from opentelemetry import trace
from prometheus_client import Counter

from lore_core.chunking import chunk_document
from lore_core.contracts import FINAL_STATES, DocumentIn, DocumentState, DocumentStatus, QueuedDocument
from lore_core.dapr import EtagMismatchError, Sidecar, StateOp
from lore_core.index import VectorIndex
from lore_core.settings import TopicSettings
from lore_ingest.batcher import EmbeddingBatcher

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

OUTCOMES = Counter(
    "lore_ingest_documents_total",
    "Documents handled by lore-ingest, by outcome (indexed, unchanged, stale, failed).",
    ["outcome"],
)
# ETag conflicts are retried this often before giving up (the caller or the broker retries).
_TRANSITION_ATTEMPTS = 8


class DocumentTooLargeError(ValueError):
    pass


def status_key(tenant: str, document_id: str) -> str:
    """State-store key of a document's status: `status:{tenant}:{document_id}`."""
    return f"status:{tenant}:{document_id}"


class IngestService:
    """Splits, embeds and indexes documents, and moves their status through its lifecycle."""

    def __init__(
        self,
        *,
        sidecar: Sidecar,
        index: VectorIndex,
        batcher: EmbeddingBatcher,
        statestore: str,
        topics: TopicSettings,
        max_document_bytes: int,
        chunk_size: int,
        chunk_overlap: int,
    ) -> None:
        self._sidecar = sidecar
        self._index = index
        self._batcher = batcher
        self._statestore = statestore
        self._topics = topics
        self._max_bytes = max_document_bytes
        self._splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        self._inflight: dict[tuple[str, str, str], asyncio.Future[DocumentStatus]] = {}

    def check_size(self, document: DocumentIn) -> None:
        size = len(document.text.encode("utf-8"))
        if size > self._max_bytes:
            raise DocumentTooLargeError(f"document text is {size} bytes; the limit is {self._max_bytes}")

    async def enqueue(self, document: DocumentIn) -> DocumentStatus:
        """Records `accepted` with a new version number, then publishes the ingestion event.

        A version that is already indexed, or already on its way, is not queued again: its current
        status is returned. When the publish fails, the status becomes `failed` (nothing was
        queued) and the error propagates.

        Raises:
            DocumentTooLargeError: the text is over the configured limit (nothing is written).
            DaprError: the state store or the broker could not be reached.
        """
        self.check_size(document)
        key = status_key(document.tenant, document.document_id())
        revision = document.revision()
        live = {DocumentState.ACCEPTED, DocumentState.PROCESSING, DocumentState.INDEXED}

        async def decide(current: DocumentStatus | None) -> DocumentStatus | None:
            if current is not None and current.revision == revision and current.state in live:
                return None
            return self._status(document, DocumentState.ACCEPTED, sequence=_next(current))

        accepted, current = await self._transition(key, decide)
        if accepted is None:
            assert current is not None
            return current
        event = QueuedDocument(**document.model_dump(), sequence=accepted.sequence)
        try:
            await self._sidecar.publish(
                self._topics.pubsub, self._topics.ingest_topic, event.model_dump(mode="json")
            )
        except Exception as exc:
            await self.record_failure(document, f"could not be queued: {exc}", sequence=accepted.sequence)
            raise
        return accepted

    async def ingest(
        self, document: DocumentIn, *, sequence: int | None = None, interactive: bool = False
    ) -> DocumentStatus:
        """Indexes ``document`` (unless that version is indexed or superseded); returns its status.

        Args:
            document: The document version to index.
            sequence: The version number given when it was accepted; None for a synchronous call
                or an event published without one, which then counts as the newest version.
            interactive: Embed ahead of queued event traffic (synchronous callers).

        Raises:
            DocumentTooLargeError: the text is over the configured limit (nothing is written).
            DaprError, redis errors: transient failures; the previous version stays indexed.
        """
        self.check_size(document)
        flight = (document.tenant, document.document_id(), document.revision())
        running = self._inflight.get(flight)
        if running is not None:
            # The same version is being processed right now (a redelivery while the first delivery
            # is still held): share its outcome.
            return await asyncio.shield(running)
        future: asyncio.Future[DocumentStatus] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve_exception)
        self._inflight[flight] = future
        try:
            status = await self._ingest(document, sequence, interactive)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(status)
            return status
        finally:
            del self._inflight[flight]

    async def _ingest(self, document: DocumentIn, sequence: int | None, interactive: bool) -> DocumentStatus:
        started = time.perf_counter()
        document_id = document.document_id()
        key = status_key(document.tenant, document_id)
        revision = document.revision()
        outcome = "indexed"

        async def claim(current: DocumentStatus | None) -> DocumentStatus | None:
            nonlocal outcome
            if current is not None and sequence is not None and current.sequence > sequence:
                outcome = "stale"
                return None
            if (
                current is not None
                and current.state == DocumentState.INDEXED
                and current.revision == revision
                and (sequence is None or sequence <= current.sequence)
            ):
                outcome = "unchanged"
                return None
            seq = sequence if sequence is not None else _next(current)
            manifest = await self._index.manifest(tenant=document.tenant, document_id=document_id)
            if manifest is not None and manifest.revision == revision:
                # The index already holds this version (a crash between the index write and the
                # status write, or the same text sent again): finish the status, embed nothing.
                outcome = "unchanged"
                return self._status(document, DocumentState.INDEXED, sequence=seq, chunks=manifest.chunks)
            outcome = "indexed"
            return self._status(document, DocumentState.PROCESSING, sequence=seq)

        claimed, current = await self._transition(key, claim)
        if claimed is None or claimed.state == DocumentState.INDEXED:
            OUTCOMES.labels(outcome).inc()
            status = claimed or current
            assert status is not None
            log.info("%s/%s: %s (version %d)", document.tenant, document_id, outcome, status.sequence)
            return status

        chunks = chunk_document(document, self._splitter)
        texts = [c.text for c in chunks]
        embed_started = time.perf_counter()
        with tracer.start_as_current_span("embed chunks", attributes={"lore.chunks": len(texts)}):
            vectors = await self._batcher.embed(texts, interactive=interactive)
        embed_ms = (time.perf_counter() - embed_started) * 1000
        with tracer.start_as_current_span("index write", attributes={"lore.chunks": len(texts)}):
            result = await self._index.replace_document(
                tenant=document.tenant,
                document_id=document_id,
                title=document.title,
                source=document.source,
                chunks=chunks,
                vectors=vectors,
                revision=revision,
                sequence=claimed.sequence,
                metadata=document.metadata,
            )
        if result.superseded:
            OUTCOMES.labels("stale").inc()
            log.info("%s/%s: version %d superseded", document.tenant, document_id, claimed.sequence)
            latest = await self.status(document.tenant, document_id)
            return latest or claimed
        indexed = self._status(
            document,
            DocumentState.INDEXED,
            sequence=claimed.sequence,
            chunks=result.chunks,
            embed_ms=round(embed_ms, 1),
            total_ms=round((time.perf_counter() - started) * 1000, 1),
        )

        async def finish(current: DocumentStatus | None) -> DocumentStatus | None:
            if current is not None and current.sequence > claimed.sequence:
                return None  # a newer version was accepted meanwhile; its own event will index it
            return indexed

        written, current = await self._transition(key, finish)
        OUTCOMES.labels("unchanged" if result.unchanged else "indexed").inc()
        log.info(
            "indexed %s/%s: %d chunks (version %d)%s",
            document.tenant,
            document_id,
            result.chunks,
            claimed.sequence,
            " (unchanged)" if result.unchanged else "",
        )
        return written or current or indexed

    async def record_failure(self, document: DocumentIn, reason: str, *, sequence: int | None = None) -> None:
        """Marks a document version that will never be indexed as failed, so its producer sees why.

        A document that is already indexed keeps its status (and its chunks): a later bad version
        does not hide the good one. A newer version's status is never overwritten.
        """

        async def fail(current: DocumentStatus | None) -> DocumentStatus | None:
            if current is not None and sequence is not None and current.sequence > sequence:
                return None
            if current is not None and current.state == DocumentState.INDEXED:
                return None
            seq = sequence if sequence is not None else _next(current)
            return self._status(document, DocumentState.FAILED, sequence=seq, error=reason)

        await self._transition(status_key(document.tenant, document.document_id()), fail)
        OUTCOMES.labels("failed").inc()

    async def delete(self, tenant: str, document_id: str) -> int | None:
        """Removes a document's chunks and leaves a `deleted` tombstone in its status record, so
        that a late delivery of an older version cannot bring it back. Returns the chunk count,
        None if the document is unknown."""
        key = status_key(tenant, document_id)
        removed = await self._index.delete_document(tenant=tenant, document_id=document_id)
        known = removed > 0

        async def tombstone(current: DocumentStatus | None) -> DocumentStatus | None:
            nonlocal known
            if current is None or current.state == DocumentState.DELETED:
                return None
            known = True
            return current.model_copy(
                update={
                    "state": DocumentState.DELETED,
                    "sequence": current.sequence + 1,
                    "chunks": 0,
                    "error": None,
                    "updated_at": datetime.now(UTC),
                }
            )

        await self._transition(key, tombstone)
        return removed if known else None

    async def status(self, tenant: str, document_id: str) -> DocumentStatus | None:
        current, _ = await self._read(status_key(tenant, document_id))
        if current is None or current.state == DocumentState.DELETED:
            return None
        return current

    async def _read(self, key: str) -> tuple[DocumentStatus | None, str | None]:
        value, etag = await self._sidecar.get_state(self._statestore, key)
        return (None if value is None else DocumentStatus.model_validate(value)), etag

    async def _transition(
        self,
        key: str,
        decide: Callable[[DocumentStatus | None], Any],
    ) -> tuple[DocumentStatus | None, DocumentStatus | None]:
        """Reads the status, asks ``decide`` for the next one, writes it with the ETag read.

        ``decide`` (sync or async) returns the new status, or None to leave the record alone. On
        an ETag conflict the record is read again and ``decide`` asked again.

        Returns:
            ``(written, current)``: the status written (None if none) and the one read last.
        """
        for _ in range(_TRANSITION_ATTEMPTS):
            current, etag = await self._read(key)
            decided = decide(current)
            new: DocumentStatus | None = await decided if asyncio.iscoroutine(decided) else decided
            if new is None:
                return None, current
            try:
                # Without an ETag (no record yet) Dapr's Redis store inserts unconditionally;
                # the index manifest's own compare-and-set still keeps that race harmless.
                await self._write(key, new, etag)
            except EtagMismatchError:
                continue
            return new, current
        raise EtagMismatchError(f"{key} kept changing during {_TRANSITION_ATTEMPTS} attempts")

    async def _write(self, key: str, status: DocumentStatus, etag: str | None) -> None:
        """Writes a status with the ETag read; a final state goes with its completion event.

        Only final states (`indexed`, `failed`, `deleted`) publish: they are what other services
        react to, while `accepted` and `processing` are steps a consumer could not act on, would
        triple the events per document, and each outbox event costs daprd a 1 s wait before it is
        forwarded (pkg/runtime/pubsub/outbox.go:285). A final state is written in a state
        transaction so that the state store's outbox publishes `document.<state>` (the event
        `type`, copied from the operation's metadata into the CloudEvent: daprd v1.18.1
        pkg/runtime/pubsub/outbox.go:224-230) only together with a committed write; on state.redis
        also when the write loses on its ETag (no rollback, see components/statestore.yaml), in
        which case the transition is decided again and the event repeated: at least once.
        """
        value = status.model_dump(mode="json")
        if status.state not in FINAL_STATES:
            await self._sidecar.save_state(self._statestore, key, value, etag=etag)
            return
        event_type = f"document.{status.state.value}"
        operation = StateOp(key=key, value=value, etag=etag, metadata={"type": event_type}, event=True)
        await self._sidecar.transact(self._statestore, [operation])

    @staticmethod
    def _status(
        document: DocumentIn, state: DocumentState, *, sequence: int, **fields: Any
    ) -> DocumentStatus:
        return DocumentStatus(
            document_id=document.document_id(),
            tenant=document.tenant,
            state=state,
            title=document.title,
            revision=document.revision(),
            sequence=sequence,
            **fields,
        )


def _next(current: DocumentStatus | None) -> int:
    return 1 if current is None else current.sequence + 1


def _retrieve_exception(future: asyncio.Future[DocumentStatus]) -> None:
    # Sharers may be gone; mark the exception as retrieved so asyncio does not log it again.
    if not future.cancelled():
        future.exception()
