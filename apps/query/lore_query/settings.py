"""Settings of lore-query (environment variables, names are case-insensitive)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lore_core.search import Mode, Scorer, Tuning
from lore_core.settings import EmbeddingSettings, IndexSettings


class Settings(IndexSettings, EmbeddingSettings):
    app_id: str = "lore-query"
    min_score: float = Field(
        default=0.25, ge=-1.0, le=1.0, description="Chunks less similar than this are not used as evidence."
    )
    answer_sentences: int = Field(default=3, ge=1, le=10, description="Sentences in an extractive answer.")
    retrieval_mode: Mode = Field(
        default=Mode.HYBRID, description="Mode of a request that names none (hybrid won the evaluation)."
    )
    question_cache_size: int = Field(
        default=1024, ge=0, le=1_000_000, description="Question embeddings kept in memory (0: none)."
    )
    text_scorer: Scorer = Field(default=Scorer.BM25STD, description="RediSearch scorer of the text mode.")
    rrf_vector_weight: float = Field(default=1.0, ge=0.0, description="Hybrid: weight of the vector ranking.")
    rrf_text_weight: float = Field(default=1.0, ge=0.0, description="Hybrid: weight of the text ranking.")
    rrf_k: int = Field(default=10, ge=1, le=1000, description="Hybrid: RRF rank constant.")
    vector_hybrid_policy: Literal["BATCHES", "ADHOC_BF"] | None = Field(
        default=None,
        description="How RediSearch runs the tenant-filtered KNN; unset: it chooses per query.",
    )
    retrieval_candidates: int = Field(
        default=40, ge=1, le=1000, description="Chunks each ranker contributes before fusion and MMR."
    )

    answer_provider: Literal["extractive", "openai", "local"] = Field(
        default="extractive",
        description="`extractive`: quote the best sentences, no model; `openai`: an OpenAI-compatible "
        "chat model reached through the sidecar (HTTPEndpoint `LLM_ENDPOINT`); `local`: the same, "
        "served by the llama.cpp server the local stack starts (`make run`'s default).",
    )
    llm_endpoint: str = Field(
        default="lore-llm", description="Dapr HTTPEndpoint of the chat model (components/llm.yaml)."
    )
    llm_model: str = Field(default="gpt-4o-mini", description="Model name sent to the chat endpoint.")
    llm_max_tokens: int = Field(
        default=400, ge=1, le=4096, description="Longest generated answer; the `llm` timeout is sized for it."
    )
    llm_temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    llm_legacy_max_tokens: bool = Field(
        default=False,
        description="Also send `max_tokens`, for servers that ignore `max_completion_tokens` "
        "(llama-cpp-python's); always on for `local`.",
    )
    # The sidecar's `llm` resiliency timeout (dapr/resiliency.yaml) should fire first; this client
    # deadline only bounds what the sidecar cannot: a retry after a timed-out attempt (policy.go
    # times out each attempt), so a hung model degrades after one timeout, not two.
    llm_timeout_seconds: float = Field(
        default=15.1, gt=0, description="Client deadline of a model call, just over the `llm` timeout."
    )

    # Conversation memory (`session_id` of a question): lore_query.memory.
    memory_store: str = Field(default="memorystore", description="Dapr state store of conversation turns.")
    memory_max_turns: int = Field(default=10, ge=1, le=100, description="Turns a session keeps (oldest go).")
    memory_ttl_seconds: int = Field(
        default=3600, ge=1, description="A session idle this long is forgotten (Dapr `ttlInSeconds`)."
    )

    @property
    def generative(self) -> bool:
        """Answers come from a chat model (`local` is `openai` pointed at the stack's own server)."""
        return self.answer_provider in ("openai", "local")

    @property
    def send_max_tokens(self) -> bool:
        return self.llm_legacy_max_tokens or self.answer_provider == "local"

    def tuning(self) -> Tuning:
        return Tuning(
            scorer=self.text_scorer,
            candidates=self.retrieval_candidates,
            rrf_k=self.rrf_k,
            vector_weight=self.rrf_vector_weight,
            text_weight=self.rrf_text_weight,
            hybrid_policy=self.vector_hybrid_policy,
        )
