from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableLambda
from prometheus_client import REGISTRY

from lore_core.contracts import Answer
from lore_core.retriever import Retrieval
from lore_core.search import Match, Mode
from lore_query.chains.extractive import NO_ANSWER
from lore_query.chains.metrics import LlmMetrics
from lore_query.chains.rag import RagAnswers, cite, stream_of


class CannedRetrieval(Retrieval):
    """Answers every search with the same matches, filtered by min_score as the index does."""

    def __init__(self, matches: list[Match]) -> None:
        self.matches = matches
        self.default_mode = Mode.HYBRID

    async def search(  # options it does not apply (mode, mmr, filters) are accepted and ignored
        self, *, question: str, tenant: str, top_k: int, min_score: float | None = None, **options: Any
    ) -> tuple[Mode, list[Match]]:
        kept = [m for m in self.matches if min_score is None or m.similarity >= min_score]
        return Mode.HYBRID, kept[:top_k]


def _match(doc_id: str, text: str, similarity: float) -> Match:
    return Match(
        key=f"k:{doc_id}",
        document_id=doc_id,
        title=doc_id.title(),
        source=f"{doc_id}.md",
        chunk=0,
        text=text,
        score=similarity,
        similarity=similarity,
        embedding=np.zeros(3, dtype=np.float32),
    )


MATCHES = [
    _match("retention", "Deleted files are kept for 30 days. Then they are purged.", 0.7),
    _match("support", "Support answers chat from 08:00 to 20:00.", 0.4),
]
TOKENS_TOTAL, TTFT_COUNT = "lore_llm_tokens_total", "lore_llm_time_to_first_token_seconds_count"
PROMPT, COMPLETION = {"kind": "prompt"}, {"kind": "completion"}
INPUTS: dict[str, Any] = {"question": "How long are deleted files kept?", "tenant": "default", "top_k": 4}


class FailingModel(GenericFakeChatModel):
    async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
        raise TimeoutError("no answer within the timeout")


def _model(*replies: str, finish: str | None = "stop") -> GenericFakeChatModel:
    messages: Iterator[AIMessage] = iter(
        [AIMessage(content=r, response_metadata={"finish_reason": finish} if finish else {}) for r in replies]
    )
    return GenericFakeChatModel(messages=messages)


def _rag(model: GenericFakeChatModel, matches: list[Match] = MATCHES) -> RagAnswers:
    return RagAnswers(retrieval=CannedRetrieval(matches), model=model, min_score=0.25, sentences=2)


def _docs() -> list[Document]:
    return [
        Document(
            page_content=m.text,
            metadata={"document_id": m.document_id, "title": m.title, "source": None, "chunk": 0, "score": 1},
        )
        for m in MATCHES
    ]


def test_markers_that_name_no_retrieved_chunk_are_dropped() -> None:
    text, citations = cite("Kept 30 days [1][7]. Chat is open [2, 9]. Invented [12].", _docs())
    assert text == "Kept 30 days [1]. Chat is open [2]. Invented."
    assert [(c.marker, c.document_id) for c in citations] == [(1, "retention"), (2, "support")]


def test_citations_follow_first_use_and_are_not_repeated() -> None:
    _, citations = cite("B [2]. A [1]. B again [2].", _docs())
    assert [c.marker for c in citations] == [2, 1]


async def test_generated_answer_carries_the_citations_it_uses() -> None:
    answer = await _rag(_model("Deleted files are kept for 30 days [1].")).chain.ainvoke(INPUTS)
    assert answer.mode == "generative" and not answer.degraded
    assert answer.answer == "Deleted files are kept for 30 days [1]."
    assert [c.document_id for c in answer.citations] == ["retention"]


async def test_an_answer_without_markers_cites_every_chunk_the_model_was_given() -> None:
    answer = await _rag(_model("Thirty days.")).chain.ainvoke(INPUTS)
    assert answer.answer == "Thirty days." and not answer.degraded
    assert [(c.marker, c.document_id) for c in answer.citations] == [(1, "retention"), (2, "support")]


async def test_no_evidence_is_said_without_asking_the_model() -> None:
    model = _model()  # an empty script: any call would raise StopIteration
    answer = await _rag(model, [_match("far", "Unrelated text here.", 0.1)]).chain.ainvoke(INPUTS)
    assert answer.answer == NO_ANSWER
    assert answer.citations == [] and not answer.degraded


async def test_a_failing_model_gives_the_extractive_answer_flagged_degraded() -> None:
    answer = await _rag(FailingModel(messages=iter([]))).chain.ainvoke(INPUTS)
    assert answer.degraded and answer.mode == "extractive"
    assert answer.reason is not None and "TimeoutError" in answer.reason
    assert answer.answer.startswith("Deleted files are kept for 30 days. [1]")


async def test_a_reply_without_finish_reason_is_treated_as_cut() -> None:
    answer = await _rag(_model("Deleted files are kept", finish=None)).chain.ainvoke(INPUTS)
    assert answer.degraded
    assert answer.reason is not None and "TruncatedReplyError" in answer.reason


async def test_a_stream_without_its_terminal_event_ends_with_an_error_and_a_degraded_final() -> None:
    # GenericFakeChatModel streams the words but no finish_reason: what a stream cut by the
    # sidecar's timeout looks like to ChatOpenAI.
    events = [e async for e in _rag(_model("Deleted files are kept")).stream(INPUTS)]
    names = [name for name, _ in events]
    assert names[0] == "token"
    assert names[-3:] == ["error", "citations", "final"]
    assert "terminal event" in events[-3][1]["detail"]
    assert events[-1][1]["degraded"] is True


@pytest.mark.parametrize("similarity", [0.1])
async def test_a_stream_without_evidence_never_calls_the_model(similarity: float) -> None:
    events = [e async for e in _rag(_model(), [_match("far", "Unrelated.", similarity)]).stream(INPUTS)]
    assert [name for name, _ in events] == ["token", "citations", "final"]
    assert events[-1][1]["answer"] == NO_ANSWER


async def test_a_one_piece_answer_streams_as_the_same_three_events() -> None:
    chain: RunnableLambda[Any, Answer] = RunnableLambda(
        lambda _: Answer(answer="Kept 30 days. [1]", citations=[], mode="extractive")
    )
    events = [e async for e in stream_of(chain)(INPUTS)]
    assert [name for name, _ in events] == ["token", "citations", "final"]
    assert events[0][1] == {"text": "Kept 30 days. [1]"}
    assert events[-1][1]["mode"] == "extractive"


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _metered(*replies: AIMessage) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(replies), callbacks=[LlmMetrics()])


async def test_a_reply_with_usage_counts_its_prompt_and_completion_tokens() -> None:
    before = (_sample(TOKENS_TOTAL, PROMPT), _sample(TOKENS_TOTAL, COMPLETION), _sample(TTFT_COUNT))
    reply = AIMessage(
        content="Kept 30 days [1].",
        response_metadata={"finish_reason": "stop"},
        usage_metadata={"input_tokens": 120, "output_tokens": 7, "total_tokens": 127},
    )
    answer = await _rag(_metered(reply)).chain.ainvoke(INPUTS)
    assert not answer.degraded
    assert _sample(TOKENS_TOTAL, PROMPT) - before[0] == 120
    assert _sample(TOKENS_TOTAL, COMPLETION) - before[1] == 7
    assert _sample(TTFT_COUNT) == before[2]  # a unary reply has no first token to time


async def test_a_stream_without_usage_counts_its_chunks_and_times_its_first_token() -> None:
    # llama.cpp's server streams one chunk per token and no usage: GenericFakeChatModel streams
    # one chunk per word and space, so "Kept 30 days [1]." is 7 non-empty chunks.
    before = (_sample(TOKENS_TOTAL, PROMPT), _sample(TOKENS_TOTAL, COMPLETION), _sample(TTFT_COUNT))
    model = _metered(AIMessage(content="Kept 30 days [1].", response_metadata={"finish_reason": "stop"}))
    chunks = [chunk.text async for chunk in model.astream("How long?")]
    assert _sample(TOKENS_TOTAL, COMPLETION) - before[1] == len([c for c in chunks if c])
    assert _sample(TOKENS_TOTAL, PROMPT) == before[0]
    assert _sample(TTFT_COUNT) - before[2] == 1


async def test_tokens_streamed_before_a_failure_are_counted() -> None:
    class BreaksAfterTwoChunks(GenericFakeChatModel):
        async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
            for text in ("Kept", " 30"):
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))
            raise TimeoutError("cut")

    before = _sample(TOKENS_TOTAL, COMPLETION)
    model = BreaksAfterTwoChunks(messages=iter([]), callbacks=[LlmMetrics()])
    with pytest.raises(TimeoutError):
        _ = [chunk async for chunk in model.astream("How long?")]
    assert _sample(TOKENS_TOTAL, COMPLETION) - before == 2
