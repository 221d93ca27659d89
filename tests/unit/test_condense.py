"""Follow-up questions made standalone (lore_query.chains.condense) and bounded session history."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from lore_query.chains.condense import build_condense
from lore_query.chains.prompts import CONDENSE_PROMPT, CONDENSE_SYSTEM
from lore_query.memory import bounded

HISTORY: list[BaseMessage] = [
    HumanMessage("How long are deleted files kept in the recycle bin?"),
    AIMessage("Deleted files are kept for 30 days [1]."),
]


def _inputs(question: str, history: list[BaseMessage]) -> dict[str, Any]:
    return {"question": question, "history": history}


class FailingModel(GenericFakeChatModel):
    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("model down")


async def test_a_first_question_passes_unchanged_without_a_model_call() -> None:
    model = GenericFakeChatModel(messages=iter([]))  # would raise StopIteration if called
    condense = build_condense(model)
    assert await condense.ainvoke(_inputs("What is the refund policy?", [])) == "What is the refund policy?"


async def test_a_follow_up_is_rewritten_by_the_model() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(' "When are deleted files purged?" ')]))
    condense = build_condense(model)
    assert await condense.ainvoke(_inputs("And after that?", HISTORY)) == "When are deleted files purged?"


@pytest.mark.parametrize("model", [None, "failing", "empty"])
async def test_without_a_usable_model_the_previous_question_leads(model: str | None) -> None:
    chat = {
        None: None,
        "failing": FailingModel(messages=iter([])),
        "empty": GenericFakeChatModel(messages=iter([AIMessage("  ")])),
    }[model]
    condense = build_condense(chat)
    rewritten = await condense.ainvoke(_inputs("And after that?", HISTORY))
    assert rewritten == "How long are deleted files kept in the recycle bin? And after that?"


def test_the_condense_prompt_carries_the_history_then_the_question() -> None:
    messages = CONDENSE_PROMPT.format_messages(question="And after that?", history=HISTORY)
    assert [m.type for m in messages] == ["system", "human", "ai", "human"]
    assert messages[0].content == CONDENSE_SYSTEM
    assert messages[1].content == HISTORY[0].content
    assert messages[-1].content == "And after that?"


def test_history_keeps_the_last_turns() -> None:
    turns = [m for n in range(12) for m in (HumanMessage(f"q{n}"), AIMessage(f"a{n}"))]
    kept = bounded(turns, 10)
    assert len(kept) == 20
    assert kept[0].content == "q2" and kept[-1].content == "a11"
    assert bounded(turns, 0) == []
