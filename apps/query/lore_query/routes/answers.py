"""Question answering, invoked through Dapr by the gateway or by any other app."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from lore_core.contracts import Answer, QuestionIn
from lore_query.deps import ChainDep

router = APIRouter()


@router.post("/answers")
async def answer(question: Annotated[QuestionIn, Body()], chain: ChainDep) -> Answer:
    """Answer a question from the tenant's indexed documents, with citations.

    Every valid question is answered 200, also one without evidence (the answer says so), so
    the caller's circuit breaker counts only real failures (5xx). A body that breaks `QuestionIn`
    is answered 422 and counts as a failure: validate before invoking, as the gateway does.
    """
    return await chain.ainvoke(question.model_dump())
