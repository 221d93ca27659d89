"""Time to first token and tokens/s of the local model, by path, against the direct path in the same run.

Starts a whole local stack with `ANSWER_PROVIDER=local` (Redis, sidecars, apps and the llama.cpp
server with SmolLM2-135M-Instruct; `make llm` installs it) on free ports, ingests one document, then
streams the same question, round after round, three ways:

1. direct: `POST /v1/chat/completions` to the llama.cpp server (the baseline);
2. sidecar: the same request through lore-query's daprd, `/v1.0/invoke/lore-llm/method/v1/...`
   (the Dapr HTTPEndpoint and `llm` resiliency policy lore-query's calls go through);
3. answer: `POST /v1/answers` with `stream: true` at the gateway: gateway -> its sidecar ->
   lore-query's sidecar -> lore-query (question embedding, hybrid retrieval, prompt) -> its sidecar
   -> the model, and the tokens back the same way as SSE events.

Paths 1 and 2 send the prompt lore-query builds for that question (the same system message and
numbered context), so the three differ in the route, not the work. Rounds interleave the paths, so
load from other work on the machine falls on all three alike; one warm-up round is not counted.
TTFT is from sending the request to the first non-empty token; tokens/s is over the tokens after
the first (generation speed as the client sees it). Medians, and ratios to direct.

Usage:
    python bench/llm.py [--rounds 8] [--max-tokens 48] [--daprd .cache/dapr/bin/daprd]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from local_stack import local_stack

from lore_query.chains.prompts import RAG_PROMPT, context_block
from lore_stack.llm_server import MODEL_ALIAS

ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench-llm"
DOC = {
    "id": "retention",
    "tenant": TENANT,
    "title": "Data retention",
    "text": (
        "Deleted files are kept in the recycle bin for 30 days. After 30 days they are purged and "
        "cannot be restored. Administrators can empty the recycle bin earlier from the admin console."
    ),
}
QUESTION = "How long are deleted files kept in the recycle bin?"


@dataclass
class Sample:
    ttft: float
    tokens: int
    generation_seconds: float

    @property
    def tokens_per_second(self) -> float | None:
        if self.tokens < 2 or self.generation_seconds <= 0:
            return None
        return (self.tokens - 1) / self.generation_seconds


def _timed(lines: Iterator[str], token_of: Callable[[str, str], str | None], started: float) -> Sample:
    """Reads an SSE stream; ``token_of(event, data)`` gives a token's text or None."""
    first = last = None
    tokens = 0
    event = ""
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            text = token_of(event, line.removeprefix("data: "))
            if text:
                last = time.perf_counter()
                first = first or last
                tokens += 1
    if first is None or last is None:
        raise RuntimeError("the stream carried no token")
    return Sample(ttft=first - started, tokens=tokens, generation_seconds=last - first)


def _chat_token(event: str, data: str) -> str | None:
    if data.strip() == "[DONE]":
        return None
    choices = json.loads(data).get("choices") or []
    return choices[0].get("delta", {}).get("content") if choices else None


def _answer_token(event: str, data: str) -> str | None:
    return str(json.loads(data)["text"]) if event == "token" else None


def _chat_body(messages: list[BaseMessage], max_tokens: int) -> dict[str, Any]:
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    return {
        "model": MODEL_ALIAS,
        "messages": [{"role": roles[m.type], "content": m.text} for m in messages],
        "stream": True,
        "temperature": 0.0,
        "max_tokens": max_tokens,
    }


def chat(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> Sample:
    started = time.perf_counter()
    with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        return _timed(response.iter_lines(), _chat_token, started)


def answer(client: httpx.Client, gateway: str) -> Sample:
    started = time.perf_counter()
    body = {"question": QUESTION, "tenant": TENANT, "stream": True}
    with client.stream("POST", f"{gateway}/v1/answers", json=body) as response:
        response.raise_for_status()
        return _timed(response.iter_lines(), _answer_token, started)


def retrieve(client: httpx.Client, gateway: str) -> Sample:
    """The retrieval an answer starts with, alone: `POST /v1/retrieve` through the same hops."""
    started = time.perf_counter()
    body = {"question": QUESTION, "tenant": TENANT, "top_k": 4}
    response = client.post(f"{gateway}/v1/retrieve", json=body)
    response.raise_for_status()
    return Sample(ttft=time.perf_counter() - started, tokens=0, generation_seconds=0.0)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--daprd", default=str(ROOT / ".cache" / "dapr" / "bin" / "daprd"))
    args = parser.parse_args()
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the stack below is stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    env = {"ANSWER_PROVIDER": "local", "LLM_MAX_TOKENS": str(args.max_tokens)}
    with local_stack(Path(args.daprd), env, timeout=300) as stack, httpx.Client(timeout=120) as client:
        assert stack.llm is not None
        direct = f"{stack.llm.base_url}/v1/chat/completions"
        gateway = stack.url("lore-gateway")
        response = client.post(f"{gateway}/v1/documents", json=DOC)
        response.raise_for_status()
        # What lore-query sends for this question: its prompt around the chunk it retrieves.
        chunk = client.post(
            f"{gateway}/v1/retrieve", json={"question": QUESTION, "tenant": TENANT, "top_k": 4}
        )
        chunk.raise_for_status()
        documents = [
            Document(page_content=m["text"], metadata={"title": m.get("title"), "source": m.get("source")})
            for m in chunk.json()["chunks"]
        ]
        body = _chat_body(
            RAG_PROMPT.format_messages(context=context_block(documents), question=QUESTION), args.max_tokens
        )
        query_sidecar = stack.apps["lore-query"].http
        endpoint = f"{query_sidecar}/v1.0/invoke/lore-llm/method/v1/chat/completions"
        token = {"dapr-api-token": stack.secrets["dapr-api-token"]}
        paths: dict[str, Callable[[], Sample]] = {
            "direct": lambda: chat(client, direct, body, {}),
            "sidecar": lambda: chat(client, endpoint, body, token),
            "answer": lambda: answer(client, gateway),
            "retrieve": lambda: retrieve(client, gateway),
        }
        samples: dict[str, list[Sample]] = {name: [] for name in paths}
        for round_ in range(args.rounds + 1):
            for name, run in paths.items():
                sample = run()
                if round_ > 0:  # round 0 warms caches (the model's, connections, the index)
                    samples[name].append(sample)
        report(samples, args)


def report(samples: dict[str, list[Sample]], args: argparse.Namespace) -> None:
    base_ttft = _median([s.ttft for s in samples["direct"]])
    base_rate = _median([r for s in samples["direct"] if (r := s.tokens_per_second)])
    print(
        f"\nlocal model {MODEL_ALIAS}, {args.rounds} rounds (+1 warm-up), max {args.max_tokens} tokens, "
        "medians; ratios against direct, same run"
    )
    print(f"{'path':<10}{'TTFT ms':>10}{'x direct':>10}{'tokens/s':>10}{'x direct':>10}{'tokens':>8}")
    for name, runs in samples.items():
        if name == "retrieve":
            continue
        ttft = _median([s.ttft for s in runs])
        rate = _median([r for s in runs if (r := s.tokens_per_second)])
        tokens = _median([float(s.tokens) for s in runs])
        print(
            f"{name:<10}{ttft * 1000:>10.1f}{ttft / base_ttft:>10.2f}{rate:>10.1f}{rate / base_rate:>10.2f}"
            f"{tokens:>8.0f}"
        )
    # Overheads paired by round (the same load on each path of a round), in ms.
    direct = [s.ttft for s in samples["direct"]]
    pairs = {
        "sidecar - direct (TTFT)": [s.ttft - d for s, d in zip(samples["sidecar"], direct, strict=True)],
        "answer - direct (TTFT)": [s.ttft - d for s, d in zip(samples["answer"], direct, strict=True)],
        "retrieval alone (POST /v1/retrieve)": [s.ttft for s in samples["retrieve"]],
        "answer - direct - retrieval (TTFT)": [
            a.ttft - d - r.ttft
            for a, d, r in zip(samples["answer"], direct, samples["retrieve"], strict=True)
        ],
    }
    print(f"\n{'overhead, paired by round':<40}{'p50 ms':>10}{'p95 ms':>10}")
    for label, values in pairs.items():
        print(f"{label:<40}{_median(values) * 1000:>10.1f}{_p95(values) * 1000:>10.1f}")


if __name__ == "__main__":
    main()
