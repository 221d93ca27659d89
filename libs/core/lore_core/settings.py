"""Settings shared by every Lore app; each app's own `Settings` extends `CommonSettings`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lore_core.search import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_RUNTIME,
    HNSW_M,
    IndexOptions,
    parse_metadata_fields,
)

_PLACEHOLDERS = {"", "changeme", "change-me", "placeholder", "todo", "xxx"}


class CommonSettings(BaseSettings):
    """Values every app needs to reach its sidecar, Redis and the telemetry backend.

    Required values have no default: a missing one fails start-up with pydantic's message, which
    names the environment variable.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    app_id: str
    app_port: int = Field(default=8000, ge=1, le=65535)
    dapr_http_port: int = Field(default=3500, ge=1, le=65535)
    # The sidecar's gRPC port: state, pub/sub and secrets go through the Dapr SDK's gRPC client.
    dapr_grpc_port: int = Field(default=50001, ge=1, le=65535)
    dapr_host: str = "127.0.0.1"
    # Sent as `dapr-api-token` on every call to the sidecar (daprd is started with the same value).
    dapr_api_token: SecretStr
    # The sidecar sends this as `dapr-api-token` on every call it makes to the app.
    app_api_token: SecretStr
    sidecar_wait_seconds: float = Field(default=60.0, gt=0)
    # Client-side ceiling of one call through the sidecar. It must outlast the longest resiliency
    # timeout of the calls an app makes (`ingest`: 120s in dapr/resiliency.yaml), so that the
    # sidecar's own answer (success, or 500 on its timeout) always reaches the caller: a large
    # synchronous ingestion that succeeds is never reported as 503 by the gateway.
    sidecar_call_timeout_seconds: float = Field(default=150.0, gt=0)

    secret_store: str = "secretstore"

    otel_exporter_otlp_endpoint: str | None = None
    log_level: str = "INFO"
    # `json`: one JSON object per line with the current trace and span ids, for a log pipeline
    # that joins logs to traces; `text` stays readable in a terminal.
    log_format: Literal["text", "json"] = "text"

    @field_validator("dapr_api_token", "app_api_token")
    @classmethod
    def _not_placeholder(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is empty or still a placeholder; set a random token")
        return value

    @property
    def dapr_base_url(self) -> str:
        return f"http://{self.dapr_host}:{self.dapr_http_port}"

    @property
    def dapr_grpc_address(self) -> str:
        return f"{self.dapr_host}:{self.dapr_grpc_port}"


class IndexSettings(CommonSettings):
    """Settings of the apps that read or write the vector index (ingest, query)."""

    # Redis is reached directly (not through Dapr) for the vector index only.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Name of the secret (in `secret_store`) holding the Redis password; empty means no password.
    redis_password_secret: str = "redis-password"
    index_name: str = "lore-chunks"
    index_prefix: str = "lore:chunk:"
    # Filterable document metadata, one schema for ingest and query: `name:tag` or `name:numeric`
    # pairs, comma-separated (`collection` is always a tag). A change rebuilds the index definition.
    index_metadata_fields: str = ""
    # HNSW parameters of the vector field; the defaults reach recall@10 0.984 against exact search
    # on 100,000 chunks (bench/query, README "Retrieval quality").
    index_hnsw_m: int = Field(default=HNSW_M, ge=2, le=512)
    index_hnsw_ef_construction: int = Field(default=HNSW_EF_CONSTRUCTION, ge=1, le=4096)
    index_hnsw_ef_runtime: int = Field(default=HNSW_EF_RUNTIME, ge=1, le=4096)

    @field_validator("index_metadata_fields")
    @classmethod
    def _metadata_fields(cls, value: str) -> str:
        parse_metadata_fields(value)
        return value

    def index_options(self) -> IndexOptions:
        return IndexOptions(
            metadata=parse_metadata_fields(self.index_metadata_fields),
            hnsw_m=self.index_hnsw_m,
            hnsw_ef_construction=self.index_hnsw_ef_construction,
            hnsw_ef_runtime=self.index_hnsw_ef_runtime,
        )

    @property
    def manifest_prefix(self) -> str:
        """Key prefix of document manifests, derived from `index_prefix` so two deployments that
        share a Redis under different prefixes never read each other's manifests."""
        return f"{self.index_prefix.rstrip(':')}:manifest:"


class TopicSettings(BaseSettings):
    """The ingestion topic and its dead-letter topic: one definition for every app that publishes
    or consumes them (the gateway publishes, lore-ingest consumes and dead-letters)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    pubsub: str = "pubsub"
    ingest_topic: str = "lore.documents"
    # Events that cannot be indexed, in the one documented `DeadLetter` shape (lore_core.contracts).
    dead_letter_topic: str = "lore.documents.deadletter"
    # Where Dapr itself moves an event whose redeliveries are exhausted; Dapr forwards the bare
    # payload there, so lore-ingest wraps it into a `DeadLetter` and republishes it on
    # `dead_letter_topic`: consumers of dead letters see one shape whoever moved the event.
    exhausted_topic: str = "lore.documents.exhausted"
    # Completion events (`document.indexed`, `document.failed`, `document.deleted`, `job.finished`;
    # lore_core.contracts.DocumentEvent / JobEvent). The document events go out through the state
    # store's transactional outbox, whose topic is `outboxPublishTopic` in components/statestore.yaml:
    # keep the two equal.
    events_topic: str = "lore.events"


class EmbeddingSettings(BaseSettings):
    """Which embedding provider an app uses (mixed into the settings of ingest and query).

    ``local`` runs all-MiniLM-L6-v2 in-process (onnxruntime); ``openai`` calls any server with an
    OpenAI-compatible ``POST /v1/embeddings``. Ingest and query must agree on every value, or
    queries are compared with vectors of another model.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    embedding_provider: Literal["local", "openai"] = "local"
    # local: folder with model.onnx and tokenizer.json; unset means .cache/models/all-minilm-l6-v2
    # of the repository (`make model`). Images set it to where they copied the model.
    embedding_model_dir: Path | None = None
    # local: the ONNX file in that folder. `model-int8.onnx` (made by bench/embeddings.py) runs
    # 1.4-1.9x faster here at the same sample-eval figures (README, "Ingestion throughput"); fp32
    # stays the default until a larger evaluation backs int8. Ingest and query must agree.
    embedding_model_file: str = "model.onnx"
    # local: texts per inference run; openai: texts per request.
    embedding_batch_size: int = Field(default=32, ge=1)
    # local: onnxruntime threads per inference run; unset means one per CPU core.
    embedding_threads: int | None = Field(default=None, ge=1)
    # openai: base URL up to and including /v1, e.g. http://embedder:8000/v1.
    embedding_base_url: str | None = None
    # openai: the `model` field of each request.
    embedding_model: str = "all-MiniLM-L6-v2"
    # Width of the vectors, and so of the index's vector field.
    embedding_dimension: int = Field(default=384, ge=1)
    # openai: secret (in `secret_store`) holding the API key; empty means no key.
    embedding_api_key_secret: str = "embedding-api-key"


class DocumentLimitSettings(BaseSettings):
    """The document size limit, shared by lore-ingest (which enforces it) and the gateway (which
    checks it before invoking lore-ingest, so that oversized documents never reach lore-ingest
    and cannot count against its circuit breaker)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    max_document_bytes: int = Field(
        default=512_000, gt=0, description="Largest accepted document text, in UTF-8 bytes."
    )
