"""Chat model metrics: tokens used and time to first token, from LangChain's callbacks.

`LlmMetrics` is a callback handler given to the chat model, so every call counts, whichever chain
makes it (answers, streamed answers, condensed follow-ups):

- `lore_llm_tokens_total{kind="prompt"|"completion"}`: from the `usage` the server reports (a unary
  reply always carries one; a stream only when the server honours `stream_options.include_usage`,
  which `ChatOpenAI(stream_usage=True)` asks for). llama-cpp-python's server (0.3.36) ignores that
  option and streams one chunk per generated token with no usage (llama_cpp/llama_chat_format.py:360
  `_convert_text_completion_chunks_to_chat`), so for a stream without usage the completion tokens
  are its non-empty chunks and its prompt tokens go uncounted.
- `lore_llm_time_to_first_token_seconds`: from the call's start to its first non-empty chunk, so
  streamed calls only (a unary call has no first token to observe); the first chunk of an OpenAI
  stream carries the role and no text, and is not a token.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, GenerationChunk, LLMResult
from prometheus_client import Counter, Histogram

TOKENS = Counter(
    "lore_llm_tokens",
    "Chat model tokens, by kind (prompt, completion); from the server's usage, else streamed chunks.",
    ["kind"],
)
TIME_TO_FIRST_TOKEN = Histogram(
    "lore_llm_time_to_first_token_seconds",
    "Seconds from a streamed chat model call to its first token (through the sidecar).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0),
)
# Both series exist from the start, so a dashboard shows 0 rather than "no data" before a call.
for _kind in ("prompt", "completion"):
    TOKENS.labels(_kind)

# Calls whose end never came (a stream its reader dropped without LangChain seeing an error) are
# forgotten oldest first past this many, so the table cannot grow without bound.
_MAX_OPEN_CALLS = 1024


@dataclass
class _Call:
    started: float
    first_token: float | None = None
    chunks: int = 0


class LlmMetrics(BaseCallbackHandler):
    """Observes `TOKENS` and `TIME_TO_FIRST_TOKEN` for the calls of the model it is given to."""

    # Cheap bookkeeping: run in the event loop, not in a thread pool (LangChain runs a sync
    # handler inline when this is set).
    run_inline = True

    def __init__(self) -> None:
        self._calls: OrderedDict[UUID, _Call] = OrderedDict()

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self._calls[run_id] = _Call(started=time.perf_counter())
        while len(self._calls) > _MAX_OPEN_CALLS:
            self._calls.popitem(last=False)

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        call = self._calls.get(run_id)
        if call is None or not token:
            return
        if call.first_token is None:
            call.first_token = time.perf_counter()
            TIME_TO_FIRST_TOKEN.observe(call.first_token - call.started)
        call.chunks += 1

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.pop(run_id, None)
        usage = _usage(response)
        if usage is not None:
            TOKENS.labels("prompt").inc(usage[0])
            TOKENS.labels("completion").inc(usage[1])
        elif call is not None:
            TOKENS.labels("completion").inc(call.chunks)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # Tokens streamed before the failure were generated (and paid for) all the same.
        call = self._calls.pop(run_id, None)
        if call is not None:
            TOKENS.labels("completion").inc(call.chunks)


def _usage(response: LLMResult) -> tuple[int, int] | None:
    """(prompt, completion) tokens of the reply's `usage_metadata`; None when the server sent none."""
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration) and isinstance(generation.message, AIMessage):
                usage = generation.message.usage_metadata
                if usage is not None:
                    return usage["input_tokens"], usage["output_tokens"]
    return None
