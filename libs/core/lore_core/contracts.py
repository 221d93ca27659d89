"""Wire contracts shared by the apps and by callers in other languages.

These pydantic models are the JSON bodies of ingestion events, document status records, questions
and answers. Unknown fields are refused (`extra="forbid"`) so a typo in a caller's payload becomes
a clear 422 or a dead letter instead of a silently ignored value.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DOCUMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class DocumentIn(_Strict):
    """A document to index: the body of `POST /v1/documents` and of an ingestion event."""

    id: str | None = Field(
        default=None,
        pattern=DOCUMENT_ID_PATTERN,
        description="Stable id; defaults to a hash of tenant and text, so the same text is one document.",
    )
    tenant: str = Field(default="default", pattern=TENANT_PATTERN)
    title: str = Field(default="", max_length=500)
    source: str | None = Field(
        default=None, max_length=2000, description="Where the text came from (URL, path)."
    )
    text: str = Field(description="UTF-8 text of the document.")
    metadata: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        max_length=64,
        description="User metadata (flat key/value pairs); a change of it is a new version.",
    )

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("document text is empty")
        return value

    def revision(self) -> str:
        """Content hash of this version: what is indexed depends on text, title, source, metadata."""
        canonical = json.dumps(
            [self.tenant, self.title, self.source, self.metadata, self.text],
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def document_id(self) -> str:
        """The explicit id, or a content hash (`sha256(tenant \\0 text)`, 32 hex digits)."""
        if self.id is not None:
            return self.id
        digest = hashlib.sha256(f"{self.tenant}\0{self.text}".encode()).hexdigest()
        return digest[:32]


class DocumentState(StrEnum):
    """Lifecycle of a document version: `accepted` (queued) -> `processing` -> `indexed` | `failed`.

    `deleted` is a tombstone kept so that a late delivery of an older version cannot bring a
    deleted document back; the API answers 404 for it.
    """

    ACCEPTED = "accepted"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"
    DELETED = "deleted"


FINAL_STATES = frozenset({DocumentState.INDEXED, DocumentState.FAILED, DocumentState.DELETED})


class QueuedDocument(DocumentIn):
    """The payload of an ingestion event: a document plus the version number lore-ingest gave it
    when it accepted it. Producers that publish directly may leave `sequence` out; the event then
    counts as the newest version when it is delivered."""

    sequence: int | None = Field(default=None, ge=1)


class DocumentStatus(_Strict):
    """Status record kept in the Dapr state store under `status||{tenant}||{document_id}`."""

    document_id: str
    tenant: str
    state: DocumentState
    title: str = ""
    chunks: int = 0
    error: str | None = None
    revision: str | None = Field(
        default=None,
        description="Content hash of the version this status describes (text, title, source, metadata).",
    )
    sequence: int = Field(
        default=0,
        ge=0,
        description="Version number of the document, raised by every accepted submission; an event "
        "carrying a lower number than the stored one is stale and changes nothing.",
    )
    embed_ms: float | None = Field(default=None, description="Time spent embedding this version.")
    total_ms: float | None = Field(default=None, description="Time from delivery to indexed.")
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


RetrievalMode = Literal["vector", "text", "hybrid"]


class QuestionIn(_Strict):
    """The body of `POST /v1/answers`; the retrieval options are those of `RetrieveIn`."""

    question: str = Field(min_length=1, max_length=2000)
    tenant: str = Field(default="default", pattern=TENANT_PATTERN)
    top_k: int = Field(default=4, ge=1, le=20)
    mode: RetrievalMode | None = Field(
        default=None,
        description="`vector` (embedding KNN), `text` (BM25) or `hybrid` (both, rank-fused); "
        "unset: the server's default.",
    )
    min_score: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Chunks whose cosine similarity to the question is lower are dropped; unset: the "
        "server's default (for answers) or none (for retrieval).",
    )
    mmr: bool = Field(default=False, description="Diversify the chunks (maximal marginal relevance).")

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is empty")
        return value


class Citation(_Strict):
    """One retrieved chunk an answer rests on; `marker` is the `[n]` used in the answer text."""

    marker: int
    document_id: str
    title: str
    source: str | None
    chunk: int
    score: float = Field(description="Cosine similarity between question and chunk, in [-1, 1].")
    text: str


class DocumentDeleted(_Strict):
    """The body of a successful `DELETE /v1/documents/{tenant}/{document_id}`."""

    document_id: str
    tenant: str
    chunks_removed: int


class Answer(_Strict):
    answer: str
    citations: list[Citation]
    mode: str = Field(description="How the answer was produced, e.g. `extractive`.")


class DeadLetter(_Strict):
    """Published on the dead-letter topic when an ingestion event cannot be processed."""

    reason: str
    topic: str
    event_id: str | None = None
    event: Any = None
    failed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Outcome(StrEnum):
    """Marks a body of an internal route that is not the route's success body."""

    REFUSED = "refused"


class Refusal(_Strict):
    """An expected refusal by an internal route (one invoked through Dapr), answered with HTTP 200.

    Dapr counts every invocation answer outside 200-399 as a failure of the callee, and a caller's
    circuit breaker opens after a few of them for that method path, for every request of that
    caller. An outcome that depends on what was asked (not found, too large, invalid, conflict) is
    therefore answered as HTTP 200 with this body; only real failures (5xx, unreachable) count.
    `outcome` is always `refused` and tells it apart from the route's success body; `status` is the
    HTTP status a caller's own API should answer with (the gateway answers with it as is).
    """

    outcome: Outcome = Outcome.REFUSED
    error: str = Field(description="Stable machine-readable code, e.g. `not_found`, `too_large`.")
    detail: Any = Field(description="Human-readable text, or a list of `{field, problem}`.")
    status: int = Field(ge=400, le=499, description="The HTTP status this refusal stands for.")


class RetrieveIn(QuestionIn):
    """The body of `POST /v1/retrieve`: the chunks only, no answer."""

    top_k: int = Field(default=10, ge=1, le=100)


class RetrievedChunk(_Strict):
    document_id: str
    title: str
    source: str | None
    chunk: int
    text: str
    score: float = Field(
        description="The mode's ranking score: cosine similarity (vector), BM25 (text), fused "
        "reciprocal-rank score (hybrid)."
    )
    similarity: float = Field(description="Cosine similarity between question and chunk, in [-1, 1].")


class Retrieved(_Strict):
    """The answer of `POST /v1/retrieve`: chunks best first, and the mode that ranked them."""

    mode: RetrievalMode
    chunks: list[RetrievedChunk]
