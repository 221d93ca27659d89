"""Wire contracts shared by the apps and by callers in other languages.

These pydantic models are the JSON bodies of ingestion events, document status records, questions
and answers. Unknown fields are refused (`extra="forbid"`) so a typo in a caller's payload becomes
a clear 422 or a dead letter instead of a silently ignored value.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

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

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("document text is empty")
        return value

    def document_id(self) -> str:
        """The explicit id, or a content hash (`sha256(tenant \\0 text)`, 32 hex digits)."""
        if self.id is not None:
            return self.id
        digest = hashlib.sha256(f"{self.tenant}\0{self.text}".encode()).hexdigest()
        return digest[:32]


class DocumentState(StrEnum):
    ACCEPTED = "accepted"
    INDEXED = "indexed"
    FAILED = "failed"


class DocumentStatus(_Strict):
    """Status record kept in the Dapr state store under `status||{tenant}||{document_id}`."""

    document_id: str
    tenant: str
    state: DocumentState
    title: str = ""
    chunks: int = 0
    error: str | None = None
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class QuestionIn(_Strict):
    """The body of `POST /v1/answers`."""

    question: str = Field(min_length=1, max_length=2000)
    tenant: str = Field(default="default", pattern=TENANT_PATTERN)
    top_k: int = Field(default=4, ge=1, le=20)

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
