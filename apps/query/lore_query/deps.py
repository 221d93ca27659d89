"""FastAPI dependencies of lore-query; tests replace them with `app.dependency_overrides`."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from langchain_core.runnables import Runnable

from lore_core.callers import Callers, CallerSettings
from lore_core.contracts import Answer
from lore_core.retriever import Retrieval
from lore_query.memory import Conversations

AnswerChain = Runnable[dict[str, Any], Answer]


def get_chain(request: Request) -> AnswerChain:
    return cast(AnswerChain, request.app.state.chain)


def get_retrieval(request: Request) -> Retrieval:
    return cast(Retrieval, request.app.state.retrieval)


def get_conversations(request: Request) -> Conversations:
    return cast(Conversations, request.app.state.conversations)


ChainDep = Annotated[AnswerChain, Depends(get_chain)]
RetrievalDep = Annotated[Retrieval, Depends(get_retrieval)]
ConversationsDep = Annotated[Conversations, Depends(get_conversations)]


@cache
def get_callers() -> Callers:
    """The app-ids trusted to invoke the internal routes and set the tenant (lore_core.callers)."""
    return Callers.from_settings(CallerSettings())


CallersDep = Annotated[Callers, Depends(get_callers)]
