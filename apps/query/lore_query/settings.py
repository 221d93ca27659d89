"""Settings of lore-query (environment variables, names are case-insensitive)."""

from __future__ import annotations

from pydantic import Field

from lore_core.settings import IndexSettings


class Settings(IndexSettings):
    app_id: str = "lore-query"
    min_score: float = Field(
        default=0.25, ge=-1.0, le=1.0, description="Chunks less similar than this are not used as evidence."
    )
    answer_sentences: int = Field(default=3, ge=1, le=10, description="Sentences in an extractive answer.")
