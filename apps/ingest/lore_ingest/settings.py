"""Settings of lore-ingest (environment variables, names are case-insensitive)."""

from __future__ import annotations

from pydantic import Field

from lore_core.settings import DocumentLimitSettings, EmbeddingSettings, IndexSettings, TopicSettings


class Settings(IndexSettings, TopicSettings, EmbeddingSettings, DocumentLimitSettings):
    app_id: str = "lore-ingest"
    statestore: str = "statestore"
    chunk_size: int = Field(
        default=800, ge=100, description="Characters per chunk (about 200 MiniLM tokens)."
    )
    chunk_overlap: int = Field(default=120, ge=0)
    embed_max_batch: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Chunks per embedding run, shared by concurrent ingestions; a synchronous "
        "ingestion waits for at most one such batch behind queued event traffic.",
    )
    embed_workers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Embedding batches run at once, each in its own thread, with EMBEDDING_THREADS "
        "onnxruntime threads each (default: the cores divided among the workers). Two one-thread "
        "runs beat one two-thread run on two cores shared with the sidecar and Redis: a run's "
        "threads wait for each other at every operator, and a core taken by another process stalls "
        "them all (README, Ingestion throughput).",
    )
    job_retention_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="How long an ingestion job stays listed and readable after it ended (its "
        "documents are deleted when it ends); 0 keeps job records forever.",
    )
