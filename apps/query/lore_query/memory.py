"""Conversation memory: the turns of a session, in the Dapr state store, bounded and expiring.

A session is LangChain chat history (`BaseChatMessageHistory`) kept under the state key
`session:{tenant}:{session_id}` (Dapr prefixes it with lore-query's app-id, so no other app reads
it): a JSON list of LangChain message dicts, at most `max_turns` question/answer pairs (the oldest
go first), written with the ETag of the list it extends (first-write-wins, re-read on conflict) and
with Dapr's `ttlInSeconds`, so an idle session disappears by itself. The tenant is part of the key:
the same session id in another tenant is another conversation.

No LangChain integration package stores chat history in Dapr (langchain-community has Redis,
Postgres, ... but not the Dapr state API), hence this small class on the same interface.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, messages_from_dict, messages_to_dict
from langchain_core.runnables import Runnable

from lore_core.contracts import AnswerIn
from lore_core.dapr import DaprError, EtagMismatchError, Sidecar

log = logging.getLogger(__name__)

_WRITE_ATTEMPTS = 8


def bounded(messages: Sequence[BaseMessage], max_turns: int) -> list[BaseMessage]:
    """The last ``max_turns`` turns (a turn is a question and its answer: two messages)."""
    return list(messages[-2 * max_turns :]) if max_turns > 0 else []


class DaprChatHistory(BaseChatMessageHistory):
    """One session's messages in a Dapr state store (async API; the sync one is not offered)."""

    def __init__(
        self, sidecar: Sidecar, *, store: str, tenant: str, session_id: str, max_turns: int, ttl_seconds: int
    ) -> None:
        self._sidecar = sidecar
        self._store = store
        self.key = f"session:{tenant}:{session_id}"
        self._max_turns = max_turns
        self._ttl = ttl_seconds

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        raise NotImplementedError("DaprChatHistory is async: use aget_messages()")

    def clear(self) -> None:
        raise NotImplementedError("DaprChatHistory is async: use aclear()")

    async def aget_messages(self) -> list[BaseMessage]:
        value, _ = await self._sidecar.get_state(self._store, self.key)
        return messages_from_dict(value) if value else []

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        for _ in range(_WRITE_ATTEMPTS):
            value, etag = await self._sidecar.get_state(self._store, self.key)
            current = messages_from_dict(value) if value else []
            kept = bounded([*current, *messages], self._max_turns)
            try:
                await self._sidecar.save_state(
                    self._store, self.key, messages_to_dict(kept), etag=etag, ttl_seconds=self._ttl
                )
            except EtagMismatchError:
                continue
            return
        raise EtagMismatchError(f"{self.key} kept changing during {_WRITE_ATTEMPTS} attempts")

    async def aclear(self) -> None:
        await self._sidecar.delete_state(self._store, self.key)


class ConversationMemory:
    """Opens the history of a session of a tenant."""

    def __init__(self, sidecar: Sidecar, *, store: str, max_turns: int, ttl_seconds: int) -> None:
        self._sidecar = sidecar
        self._store = store
        self._max_turns = max_turns
        self._ttl = ttl_seconds

    def session(self, tenant: str, session_id: str) -> DaprChatHistory:
        return DaprChatHistory(
            self._sidecar,
            store=self._store,
            tenant=tenant,
            session_id=session_id,
            max_turns=self._max_turns,
            ttl_seconds=self._ttl,
        )


@dataclass(frozen=True)
class Prepared:
    """What `Conversations.prepare` gives the route: the chain's inputs, the session to remember the
    turn in (None without `session_id`), and the standalone question (None without a conversation)."""

    inputs: dict[str, Any]
    session: DaprChatHistory | None
    standalone: str | None


class Conversations:
    """Answers within a session: the follow-up is condensed with the history before retrieval, and
    the turn is remembered after the answer. A question without `session_id` passes through."""

    def __init__(self, memory: ConversationMemory, condense: Runnable[dict[str, Any], str]) -> None:
        self._memory = memory
        self._condense = condense

    async def prepare(self, question: AnswerIn) -> Prepared:
        """The chain's inputs, with the question made standalone when there is a conversation (the
        session's stored turns, then the `history` the caller sent)."""
        inputs = question.model_dump(exclude={"stream", "session_id", "history"})
        given: list[BaseMessage] = [
            HumanMessage(t.content) if t.role == "user" else AIMessage(t.content) for t in question.history
        ]
        if question.session_id is None and not given:
            return Prepared(inputs=inputs, session=None, standalone=None)
        session = None
        messages: list[BaseMessage] = []
        if question.session_id is not None:
            session = self._memory.session(question.tenant, question.session_id)
            messages = await session.aget_messages()
        messages += given
        standalone = await self._condense.ainvoke({"question": question.question, "history": messages})
        inputs["question"] = standalone
        return Prepared(inputs=inputs, session=session, standalone=standalone)

    async def remember(self, history: DaprChatHistory | None, question: str, answer: str) -> None:
        if history is None:
            return
        try:
            await history.aadd_messages([HumanMessage(question), AIMessage(answer)])
        except DaprError as exc:
            # The answer stands; only the next follow-up loses this turn.
            log.warning("could not remember a turn of %s: %s", history.key, exc)
