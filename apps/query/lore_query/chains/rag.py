"""The generative answer chain: retrieve, prompt with numbered context, chat model, cited answer.

Composed with LCEL: `{question, tenant, top_k, ...} -> retrieve -> (no evidence: say so, no model
call) | (prompt -> chat model -> citations) -> Answer`. The model is any LangChain chat model; in
lore-query it is `ChatOpenAI` reached through the app's own sidecar (`chat_model_through_sidecar`),
so Dapr's resiliency policy governs every call and the API key never reaches this process.

Degraded, not broken: when the model fails (an error, a timeout, an open circuit breaker, or a
stream that ends without its terminal event) the answer is the extractive one, flagged
`degraded: true` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableBranch, RunnableLambda, RunnablePassthrough
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from lore_core.contracts import Answer, Citation
from lore_core.retriever import Retrieval
from lore_query.chains.extractive import NO_ANSWER, citation, compose_answer, retrieve_step
from lore_query.chains.metrics import LlmMetrics
from lore_query.chains.prompts import RAG_PROMPT, context_block

GENERATIVE = "generative"

# One event of a streamed answer: (SSE event name, JSON data). Names: `token` {"text"}, `error`
# {"error", "detail"}, `citations` {"citations"}, `final` (an `Answer`).
AnswerEvent = tuple[str, dict[str, Any]]
AnswerStream = Callable[[dict[str, Any]], AsyncIterator[AnswerEvent]]

# `[1]`, `[2, 3]`, `[1,2]`: the markers the prompt asks for, and the lists models write anyway.
_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([.,;:!?])")
_REASON_CHARS = 300


class TruncatedReplyError(Exception):
    """The model's reply ended without its terminal event (no `finish_reason`, no `[DONE]`).

    Dapr cuts a stream at the resiliency timeout with a clean close and HTTP 200, and the OpenAI
    clients then return the text so far without raising (`finish_reason` None); this is how the
    cut is noticed.
    """


def cite(text: str, documents: list[Document]) -> tuple[str, list[Citation]]:
    """Keeps the `[n]` markers that name a retrieved chunk, drops the others, and lists citations.

    Args:
        text: The model's answer.
        documents: The chunks numbered 1..n in the prompt.

    Returns:
        (the text with invented markers removed, citations in order of first use; a citation's
        `marker` is the chunk's number in the prompt)
    """
    used: list[int] = []

    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        kept = [n for n in numbers if 1 <= n <= len(documents)]
        used.extend(n for n in kept if n not in used)
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    cleaned = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", _MARKER.sub(keep, text))).strip()
    # A sentence ending in an invented marker kept its full stop: "... days [9]." -> "... days."
    return cleaned, [citation(n, documents[n - 1]) for n in used]


def cite_or_list(text: str, documents: list[Document]) -> tuple[str, list[Citation]]:
    """`cite`, and when the model named no retrieved chunk, every chunk it was given.

    Small models (the `local` provider's SmolLM2-135M) often answer without `[n]` markers. The
    answer still rests on the numbered context and nothing else passed the score gate, so that
    context is what it cites; the sources always come from retrieval, never from the model.
    """
    cleaned, citations = cite(text, documents)
    if not citations:
        citations = [citation(n, document) for n, document in enumerate(documents, start=1)]
    return cleaned, citations


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_REASON_CHARS]


def _prompt_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"context": context_block(inputs["documents"]), "question": inputs["question"]}


def _finish_reason(message: BaseMessage) -> str | None:
    reason = message.response_metadata.get("finish_reason")
    return str(reason) if reason else None


class RagAnswers:
    """Answers with a chat model, as one LCEL chain (`chain`) or as events (`stream`).

    Args:
        retrieval: The chunk index search.
        model: The chat model.
        min_score: Default evidence threshold (cosine similarity); below it a chunk is not evidence.
        sentences: Sentences of the extractive answer that stands in when the model fails.
    """

    def __init__(
        self, *, retrieval: Retrieval, model: BaseChatModel, min_score: float, sentences: int
    ) -> None:
        self._retrieve = retrieve_step(retrieval=retrieval, min_score=min_score)
        self._model = model
        self._sentences = sentences
        self.chain = self._build()

    def _no_evidence(self, inputs: dict[str, Any]) -> Answer:
        # Nothing retrieved passed the score gate: the model is not asked, so it cannot answer
        # from its own memory.
        return Answer(answer=NO_ANSWER, citations=[], mode=GENERATIVE)

    def _answer(self, inputs: dict[str, Any]) -> Answer:
        reply: AIMessage = inputs["reply"]
        if _finish_reason(reply) is None:
            raise TruncatedReplyError("the model's reply has no finish_reason")
        text, citations = cite_or_list(reply.text, inputs["documents"])
        return Answer(answer=text or NO_ANSWER, citations=citations, mode=GENERATIVE)

    def _degraded(self, inputs: dict[str, Any]) -> Answer:
        extractive = compose_answer(inputs["question"], inputs["documents"], self._sentences)
        return extractive.model_copy(update={"degraded": True, "reason": _reason(inputs["error"])})

    def _build(self) -> Runnable[dict[str, Any], Answer]:
        generate = RunnablePassthrough.assign(
            reply=RunnableLambda(_prompt_inputs) | RAG_PROMPT | self._model
        ) | RunnableLambda(self._answer)
        answer: Runnable[dict[str, Any], Answer] = RunnableBranch(
            (lambda inputs: not inputs["documents"], RunnableLambda(self._no_evidence)),
            generate.with_fallbacks([RunnableLambda(self._degraded)], exception_key="error"),
        )
        return self._retrieve | answer

    async def stream(self, inputs: dict[str, Any]) -> AsyncIterator[AnswerEvent]:
        """`token` events as the model writes, then `citations` and `final`.

        A failure after the first token cannot take the tokens back: it is an `error` event, and
        `final` carries the degraded extractive answer (its text replaces the streamed one).
        """
        state = await self._retrieve.ainvoke(inputs)
        if not state["documents"]:
            async for event in _answer_events(self._no_evidence(state)):
                yield event
            return
        messages = RAG_PROMPT.format_messages(**_prompt_inputs(state))
        parts: list[str] = []
        finish: str | None = None
        try:
            async for chunk in self._model.astream(messages):
                finish = _finish_reason(chunk) or finish
                if chunk.text:
                    parts.append(chunk.text)
                    yield "token", {"text": chunk.text}
            if finish is None:
                raise TruncatedReplyError(
                    "the model's stream ended without its terminal event (cut by the sidecar's timeout?)"
                )
        except Exception as exc:  # every model failure degrades, none breaks the answer
            answer = self._degraded({**state, "error": exc})
            yield "error", {"error": "llm_failed", "detail": answer.reason}
        else:
            text, citations = cite_or_list("".join(parts), state["documents"])
            answer = Answer(answer=text or NO_ANSWER, citations=citations, mode=GENERATIVE)
        async for event in _answer_events(answer, tokens=False):
            yield event


async def _answer_events(answer: Answer, *, tokens: bool = True) -> AsyncIterator[AnswerEvent]:
    if tokens:
        yield "token", {"text": answer.answer}
    yield "citations", {"citations": [c.model_dump(mode="json") for c in answer.citations]}
    yield "final", answer.model_dump(mode="json")


def stream_of(chain: Runnable[dict[str, Any], Answer]) -> AnswerStream:
    """The events of a chain that answers in one piece (the extractive one): one `token`, then
    `citations` and `final`, so a client reads every provider's stream the same way."""

    async def stream(inputs: dict[str, Any]) -> AsyncIterator[AnswerEvent]:
        async for event in _answer_events(await chain.ainvoke(inputs)):
            yield event

    return stream


def chat_model_through_sidecar(
    *,
    dapr_base_url: str,
    dapr_api_token: str,
    endpoint: str,
    model: str,
    max_tokens: int,
    temperature: float,
    timeout: float,
    legacy_max_tokens: bool = False,
) -> ChatOpenAI:
    """`ChatOpenAI` whose requests go to the Dapr HTTPEndpoint ``endpoint`` through the sidecar.

    The sidecar removes `dapr-api-token` before forwarding (daprd v1.18.1
    pkg/api/http/middlewares.go:52) and sets `Authorization` from the endpoint's secret header, so
    the key here is a placeholder the endpoint replaces. Retries are the sidecar's (`llm` policy in
    dapr/resiliency.yaml), none here. Every call is measured (`LlmMetrics`); a stream asks for its
    token usage (`stream_options.include_usage`), which servers that do not know it ignore.

    ChatOpenAI sends the limit as `max_completion_tokens` only (langchain-openai 1.x renames
    `max_tokens`); llama-cpp-python's server (0.3.36, llama_cpp/server/types.py:213) knows only
    `max_tokens` and generates until the context is full without it, so ``legacy_max_tokens``
    sends both.
    """
    return ChatOpenAI(
        model=model,
        base_url=f"{dapr_base_url}/v1.0/invoke/{endpoint}/method/v1",
        api_key=SecretStr("set-by-the-dapr-httpendpoint"),
        default_headers={"dapr-api-token": dapr_api_token},
        max_completion_tokens=max_tokens,
        temperature=temperature,
        timeout=timeout,
        max_retries=0,
        stream_usage=True,
        callbacks=[LlmMetrics()],
        extra_body={"max_tokens": max_tokens} if legacy_max_tokens else None,
    )
