"""Settings of lore-ingest (environment variables, names are case-insensitive)."""

from __future__ import annotations

from pydantic import Field

from lore_core.settings import IndexSettings


class Settings(IndexSettings):
    app_id: str = "lore-ingest"
    statestore: str = "statestore"
    pubsub: str = "pubsub"
    ingest_topic: str = "lore.documents"
    dead_letter_topic: str = "lore.documents.deadletter"
    max_document_bytes: int = Field(
        default=512_000, gt=0, description="Largest accepted document text, in UTF-8 bytes."
    )
    chunk_size: int = Field(
        default=800, ge=100, description="Characters per chunk (about 200 MiniLM tokens)."
    )
    chunk_overlap: int = Field(default=120, ge=0)
