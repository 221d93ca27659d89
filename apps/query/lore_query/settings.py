"""Settings of lore-query (environment variables, names are case-insensitive)."""

from __future__ import annotations

from pydantic import Field

from lore_core.search import Mode, Scorer, Tuning
from lore_core.settings import IndexSettings


class Settings(IndexSettings):
    app_id: str = "lore-query"
    min_score: float = Field(
        default=0.25, ge=-1.0, le=1.0, description="Chunks less similar than this are not used as evidence."
    )
    answer_sentences: int = Field(default=3, ge=1, le=10, description="Sentences in an extractive answer.")
    retrieval_mode: Mode = Field(
        default=Mode.HYBRID, description="Mode of a request that names none (hybrid won the evaluation)."
    )
    text_scorer: Scorer = Field(default=Scorer.BM25STD, description="RediSearch scorer of the text mode.")
    rrf_vector_weight: float = Field(default=1.0, ge=0.0, description="Hybrid: weight of the vector ranking.")
    rrf_text_weight: float = Field(default=1.0, ge=0.0, description="Hybrid: weight of the text ranking.")
    rrf_k: int = Field(default=10, ge=1, le=1000, description="Hybrid: RRF rank constant.")
    retrieval_candidates: int = Field(
        default=40, ge=1, le=1000, description="Chunks each ranker contributes before fusion and MMR."
    )

    def tuning(self) -> Tuning:
        return Tuning(
            scorer=self.text_scorer,
            candidates=self.retrieval_candidates,
            rrf_k=self.rrf_k,
            vector_weight=self.rrf_vector_weight,
            text_weight=self.rrf_text_weight,
        )
