"""Follow-up questions made standalone with the conversation so far, before retrieval.

`{question, history} -> str`. With a chat model: `CONDENSE_PROMPT | model | text` (prompt in
`prompts.py`). Without one (the extractive provider), or when the model fails, the follow-up is
prefixed with the previous question, which is what retrieval needs most from the history (the
subject the follow-up refers to). With no history the question passes unchanged and no model is
called.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import (
    Runnable,
    RunnableBranch,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
)

from lore_query.chains.prompts import CONDENSE_PROMPT

Condense = Runnable[dict[str, Any], str]
_MAX_CHARS = 2000


def _previous_question(history: list[BaseMessage]) -> str | None:
    for message in reversed(history):
        if isinstance(message, HumanMessage):
            return message.text
    return None


def with_previous_question(inputs: dict[str, Any]) -> str:
    previous = _previous_question(inputs["history"])
    question = str(inputs["question"])
    return f"{previous} {question}"[-_MAX_CHARS:] if previous else question


def _clean(text: str) -> str:
    return text.strip().strip('"').strip()[:_MAX_CHARS]


def build_condense(model: BaseChatModel | None) -> Condense:
    """The condensing step; see the module docstring."""
    unchanged: Runnable[dict[str, Any], str] = RunnableLambda(lambda inputs: str(inputs["question"]))
    heuristic: Runnable[dict[str, Any], str] = RunnableLambda(with_previous_question)
    rewrite = heuristic
    if model is not None:
        generated = CONDENSE_PROMPT | model | StrOutputParser() | RunnableLambda(_clean)
        # An empty rewrite is no question: the heuristic stands in, as it does for a model error.
        rewrite = RunnableParallel(
            text=generated.with_fallbacks([heuristic]), inputs=RunnablePassthrough()
        ) | RunnableLambda(lambda both: both["text"] or with_previous_question(both["inputs"]))
    return RunnableBranch((lambda inputs: not inputs["history"], unchanged), rewrite)
