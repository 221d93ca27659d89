"""Question answering, invoked through Dapr by the gateway or by any other app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import StreamingResponse

from lore_core.contracts import Answer, AnswerIn, Refusal
from lore_core.search import FilterError
from lore_query.chains.rag import AnswerEvent, AnswerStream
from lore_query.deps import CallersDep, ChainDep, ConversationsDep, RetrievalDep
from lore_query.memory import Conversations, DaprChatHistory

router = APIRouter()


def get_stream(request: Request) -> AnswerStream:
    return cast(AnswerStream, request.app.state.stream)


StreamDep = Annotated[AnswerStream, Depends(get_stream)]


async def sse(events: AsyncIterator[AnswerEvent]) -> AsyncIterator[bytes]:
    """Server-Sent Events framing: one `event:` and one single-line `data:` JSON per event."""
    async for name, data in events:
        yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


_STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "An Answer, or Server-Sent Events when `stream` is true.",
    }
}


@router.post("/answers", response_model=Answer | Refusal, responses=_STREAM_RESPONSE)
async def answer(
    question: Annotated[AnswerIn, Body()],
    chain: ChainDep,
    stream: StreamDep,
    retrieval: RetrievalDep,
    conversations: ConversationsDep,
    callers: CallersDep,
    request: Request,
) -> Any:
    """Answer a question from the tenant's indexed documents, with citations (`stream`: as SSE).

    Every valid question is answered 200, also one without evidence (the answer says so) or with
    a failed model (a degraded extractive answer), so the caller's circuit breaker counts only
    real failures (5xx). A body that breaks `AnswerIn` is answered 422 and counts as a failure:
    validate before invoking, as the gateway does. Callers: see lore_core.callers.
    """
    if refusal := callers.check(request, question.tenant):
        return refusal
    try:
        # Only lore-query knows the index schema: filters that do not fit it are refused here,
        # before any stream starts, as a 200 `Refusal` (see lore_ingest.routes.documents).
        retrieval.check_filters(question.filters)
    except FilterError as exc:
        problems = [{"field": field, "problem": problem} for field, problem in exc.problems]
        return Refusal(error="invalid_request", detail=problems, status=422)
    prepared = await conversations.prepare(question)
    inputs, history, standalone = prepared.inputs, prepared.session, prepared.standalone
    if question.stream:
        return StreamingResponse(
            sse(_remembered(stream(inputs), conversations, history, question.question, standalone)),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    answer: Answer = await chain.ainvoke(inputs)
    await conversations.remember(history, question.question, answer.answer)
    return answer.model_copy(update={"question": standalone})


async def _remembered(
    events: AsyncIterator[AnswerEvent],
    conversations: Conversations,
    history: DaprChatHistory | None,
    question: str,
    standalone: str | None,
) -> AsyncIterator[AnswerEvent]:
    """The stream, with the standalone question in `final` and the turn remembered after it."""
    async for name, data in events:
        if name == "final":
            data = {**data, "question": standalone}
            await conversations.remember(history, question, str(data["answer"]))
        yield name, data
