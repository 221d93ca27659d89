"""Wire contracts shared by the apps and by callers in other languages.

These pydantic models are the JSON bodies of ingestion events, document status records, questions
and answers. Unknown fields are refused (`extra="forbid"`) so a typo in a caller's payload becomes
a clear 422 or a dead letter instead of a silently ignored value.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

DOCUMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Section(_Strict):
    """A part of a document that chunks never straddle: a page of a PDF, a header's section of a
    Markdown or HTML file. Its `page` and `section` stay on every chunk cut from it, so that
    retrieval results and citations can point at them."""

    text: str = Field(min_length=1, description="The section's text (a part of the document's `text`).")
    page: int | None = Field(default=None, ge=1, description="Page number (1-based) in the source file.")
    section: str | None = Field(
        default=None,
        max_length=1000,
        description="Header path of the section, outermost first, e.g. `Billing > Refunds`.",
    )


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
    sections: list[Section] | None = Field(
        default=None,
        max_length=10_000,
        description="The document cut into parts (pages, header sections), in order; chunks are cut "
        "per section and keep its `page` and `section`. Unset: `text` is chunked as one piece. "
        "`text` stays the whole text (the parsers of files set both).",
    )

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("document text is empty")
        return value

    @model_validator(mode="after")
    def _sections_within_text(self) -> DocumentIn:
        # Sections are what gets chunked; bounding them by `text` keeps the size limit (checked on
        # `text`) meaningful.
        if self.sections is not None and sum(len(s.text) for s in self.sections) > len(self.text):
            raise ValueError("the sections hold more text than `text`; they are parts of it")
        return self

    def revision(self) -> str:
        """Content hash of this version: what is indexed depends on text, title, source, metadata
        and sections (left out when unset, so that the hash of a document without sections is the
        same as before sections existed)."""
        parts: list[Any] = [self.tenant, self.title, self.source, self.metadata, self.text]
        if self.sections is not None:
            parts.append([s.model_dump(mode="json") for s in self.sections])
        canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False)
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


class IngestedFile(_Strict):
    """One uploaded file and the status of each document it held (one per JSON/JSONL record)."""

    filename: str
    documents: list[DocumentStatus]


class FilesIngested(_Strict):
    """The body of a successful `POST /v1/files`: every file was read, every document indexed."""

    files: list[IngestedFile]


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
    filters: Filters | None = Field(
        default=None,
        description="Only chunks that match every condition: `source`, `collection`, `document_id` and "
        "the metadata fields the index declares (`INDEX_METADATA_FIELDS`).",
    )

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
    page: int | None = Field(default=None, description="Page of the source file the chunk is on (PDF).")
    section: str | None = Field(default=None, description="Header path of the chunk's section.")


class DocumentDeleted(_Strict):
    """The body of a successful `DELETE /v1/documents/{tenant}/{document_id}`."""

    document_id: str
    tenant: str
    chunks_removed: int


class Answer(_Strict):
    answer: str
    citations: list[Citation]
    mode: str = Field(description="How the answer was produced: `extractive` or `generative`.")
    degraded: bool = Field(
        default=False,
        description="The configured language model could not answer (error, timeout, circuit open, "
        "cut stream); this is the extractive answer instead.",
    )
    reason: str | None = Field(default=None, description="Why the answer is degraded.")
    question: str | None = Field(
        default=None,
        description="The standalone question retrieval used, when a `session_id` follow-up was "
        "rewritten with the conversation so far.",
    )


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
    page: int | None = Field(default=None, description="Page of the source file the chunk is on (PDF).")
    section: str | None = Field(default=None, description="Header path of the chunk's section.")


class Retrieved(_Strict):
    """The answer of `POST /v1/retrieve`: chunks best first, and the mode that ranked them."""

    mode: RetrievalMode
    chunks: list[RetrievedChunk]


MAX_HISTORY_MESSAGES = 40


class Turn(_Strict):
    """One earlier message of a conversation the caller keeps itself."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=8000)


class AnswerIn(QuestionIn):
    """The body of `POST /v1/answers` (and of lore-query's `answers`): a question, optionally streamed."""

    session_id: str | None = Field(
        default=None,
        pattern=DOCUMENT_ID_PATTERN,
        description="A conversation: a follow-up question is rewritten with the earlier turns of this "
        "session (kept per tenant in the Dapr state store, bounded and expiring) before retrieval.",
    )
    history: list[Turn] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_MESSAGES,
        description="Earlier messages of a conversation the caller keeps itself (oldest first), used "
        "like a session's turns to make a follow-up standalone; with `session_id`, they come after "
        "the stored turns.",
    )

    stream: bool = Field(
        default=False,
        description="Answer as Server-Sent Events: `token` events as the model writes, then "
        "`citations`, then `final` (the whole `Answer`); a failure mid-stream is an `error` event "
        "followed by a degraded `final`.",
    )


# Retrieval filters. Their shape is checked here (and so already by the gateway); whether a metadata
# field exists and has the right type is a property of the index schema, so lore-query checks that
# (`lore_core.search.filter_expression`) and refuses with the same `{field, problem}` list.

MAX_FILTER_VALUES = 100
MAX_FILTER_VALUE_CHARS = 2000
FilterScalar = str | int | float | bool


def _epoch(value: Any, bound: str) -> float:
    """A range bound as a finite number: a number as is, an ISO 8601 date or date-time as epoch
    seconds (UTC when it names no zone)."""
    if isinstance(value, bool):
        raise ValueError(f"`{bound}` must be a number or an ISO 8601 date, not a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"`{bound}` must be a number or an ISO 8601 date, not {value[:40]!r}") from None
        number = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    else:
        raise ValueError(f"`{bound}` must be a number or an ISO 8601 date")
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"`{bound}` must be finite")
    return number


class Range(_Strict):
    """A numeric range; bounds are numbers or ISO 8601 dates (compared as epoch seconds)."""

    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _bounds(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        unknown = sorted(set(data) - {"gt", "gte", "lt", "lte"})
        if unknown:
            raise ValueError(f"unknown range bound {unknown[0]!r}; use gt, gte, lt, lte")
        bounds = {k: _epoch(v, k) for k, v in data.items() if v is not None}
        if not bounds:
            raise ValueError("a range needs at least one of gt, gte, lt, lte")
        if ("gt" in bounds and "gte" in bounds) or ("lt" in bounds and "lte" in bounds):
            raise ValueError("give one lower bound (gt or gte) and one upper bound (lt or lte)")
        low = bounds.get("gt", bounds.get("gte"))
        high = bounds.get("lt", bounds.get("lte"))
        if low is not None and high is not None and low > high:
            raise ValueError("the lower bound is above the upper bound")
        return bounds


def _scalar(value: Any) -> FilterScalar:
    if isinstance(value, str):
        if not value.strip():
            # An empty tag value would make redisvl render a match-all `*`.
            raise ValueError("a filter value cannot be empty")
        if len(value) > MAX_FILTER_VALUE_CHARS:
            raise ValueError(f"a filter value has at most {MAX_FILTER_VALUE_CHARS} characters")
        # redisvl escapes query punctuation but not control characters, and RediSearch's lexer
        # answers a syntax error on some (NUL): no stored source or tag holds them anyway.
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            raise ValueError("a filter value cannot hold control characters")
        return value
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("a filter number must be finite")
        return value
    raise ValueError("must be a string, number, boolean, a list of them, or a range {gt, gte, lt, lte}")


def _condition(value: Any) -> FilterScalar | list[FilterScalar] | Range:
    """One metadata condition: a value (equality), a list (any of) or a range object."""
    if isinstance(value, Range):
        return value
    if isinstance(value, dict):
        try:
            return Range.model_validate(value)
        except ValidationError as exc:
            messages = [str(p["msg"]).removeprefix("Value error, ") for p in exc.errors()]
            raise ValueError("; ".join(messages)) from None
    if isinstance(value, list):
        if not 1 <= len(value) <= MAX_FILTER_VALUES:
            raise ValueError(f"a list of values holds 1 to {MAX_FILTER_VALUES} values")
        return [_scalar(v) for v in value]
    return _scalar(value)


def _one_or_more(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not 1 <= len(values) <= MAX_FILTER_VALUES:
        raise ValueError(f"give 1 to {MAX_FILTER_VALUES} values")
    if not all(isinstance(v, str) for v in values):
        raise ValueError("must be a string or a list of strings")
    return [str(_scalar(v)) for v in values]


_SCALAR_SCHEMA: dict[str, Any] = {"type": ["string", "number", "boolean"]}
# Typed `Any` for serialisation: pydantic then dumps the validated value by its runtime type.
Condition = Annotated[
    Any,
    PlainValidator(_condition),
    WithJsonSchema(
        {
            "anyOf": [
                _SCALAR_SCHEMA,
                {"type": "array", "items": _SCALAR_SCHEMA, "minItems": 1, "maxItems": MAX_FILTER_VALUES},
                {
                    "type": "object",
                    "properties": {b: {"type": ["number", "string"]} for b in ("gt", "gte", "lt", "lte")},
                    "additionalProperties": False,
                },
            ]
        }
    ),
]
TagValues = Annotated[
    Any,
    PlainValidator(_one_or_more),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_FILTER_VALUES},
            ]
        }
    ),
]


class Filters(_Strict):
    """Conditions a chunk must all meet. A value matches exactly (case-sensitive), a list matches any
    of its values, a range object (`gt`, `gte`, `lt`, `lte`; numbers or ISO 8601 dates) matches a
    numeric field. Values are data, never query syntax: any character is allowed."""

    source: TagValues | None = Field(default=None, description="The document's `source`, exactly.")
    collection: TagValues | None = Field(
        default=None, description="The document's `collection` metadata value (always filterable)."
    )
    document_id: TagValues | None = Field(default=None, description="Document ids.")
    metadata: dict[str, Condition] = Field(
        default_factory=dict,
        max_length=32,
        description="Conditions on metadata fields declared in the index schema (`INDEX_METADATA_FIELDS`).",
    )


class ChatMessageIn(BaseModel):
    """One message of an OpenAI-compatible chat request; unknown fields (`name`, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[Any] | None = None


class LoreChatOptions(_Strict):
    """Lore's extension of an OpenAI chat request (`"lore": {...}`, `extra_body` in the openai SDK)."""

    tenant: str = Field(default="default", pattern=TENANT_PATTERN)
    top_k: int = Field(default=4, ge=1, le=20)
    mode: RetrievalMode | None = None


class ChatCompletionIn(BaseModel):
    """The body of the gateway's OpenAI-compatible `POST /v1/chat/completions`.

    The question is the last `user` message. Sampling parameters an OpenAI client may send
    (`temperature`, `max_tokens`, ...) are accepted and ignored: the server's settings apply.
    """

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=100)
    stream: bool = False
    lore: LoreChatOptions = Field(default_factory=LoreChatOptions)


# Ingestion jobs (`POST /v1/jobs`) and completion events (topic `lore.events`).

MAX_JOB_DOCUMENTS = 10_000
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class JobIn(_Strict):
    """The JSON body of `POST /v1/jobs`: many documents indexed in the background as one job.

    A document without its own `tenant` takes the job's; a document naming another tenant is refused.
    """

    tenant: str = Field(default="default", pattern=TENANT_PATTERN)
    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_JOB_DOCUMENTS)

    @model_validator(mode="after")
    def _one_tenant(self) -> JobIn:
        for n, document in enumerate(self.documents):
            if "tenant" not in document.model_fields_set:
                document.tenant = self.tenant
            elif document.tenant != self.tenant:
                raise ValueError(
                    f"documents[{n}] is for tenant {document.tenant!r}, the job for {self.tenant!r}"
                )
        return self


class JobState(StrEnum):
    """`running` until every document has an outcome (`finished`) or the job is `cancelled`."""

    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class JobCounts(_Strict):
    """Documents of a job by outcome; `queued` are those without one yet."""

    queued: int = 0
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0


class JobFailure(_Strict):
    """A document (or file) of a job that could not be indexed, and why."""

    document_id: str | None = Field(default=None, description="None when the file could not be parsed.")
    source: str | None = Field(default=None, description="The document's source or the file's name.")
    reason: str


class JobStatus(_Strict):
    """Progress of an ingestion job: the body of `GET /v1/jobs/{job_id}` and of `job.finished`."""

    job_id: str
    tenant: str
    state: JobState
    total: int = Field(ge=0, description="Documents in the job (files that could not be parsed included).")
    counts: JobCounts = Field(default_factory=JobCounts)
    failures: list[JobFailure] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class JobList(_Strict):
    """The body of `GET /v1/jobs`: a tenant's jobs, most recent first."""

    jobs: list[JobStatus]


class _CloudEvent(BaseModel):
    """The CloudEvents 1.0 envelope Dapr delivers; Dapr's own attributes (`topic`, `pubsubname`,
    `traceparent`, ...) are allowed and ignored."""

    model_config = ConfigDict(extra="ignore")

    specversion: str = "1.0"
    id: str
    source: str = Field(description="The Dapr app-id that published the event (`lore-ingest`).")
    datacontenttype: str = "application/json"
    time: str | None = None


class DocumentEvent(_CloudEvent):
    """A document reached a final state (topic `lore.events`); `data` is its status record."""

    type: Literal["document.indexed", "document.failed", "document.deleted"]
    data: DocumentStatus


class JobEvent(_CloudEvent):
    """A job has no document left to process (topic `lore.events`); `data` is its final status."""

    type: Literal["job.finished"]
    data: JobStatus
