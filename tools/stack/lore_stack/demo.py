"""The `make run` demonstration: ingest the sample corpus through the gateway, then ask."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

import httpx

from lore_cli.client import Gateway


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def ingest_corpus(gateway: str, corpus: Path, key: str) -> list[dict[str, Any]]:
    """POSTs every `*.md` file of ``corpus`` to the gateway with API key ``key``; returns the
    document statuses."""
    statuses = []
    for path in sorted(corpus.glob("*.md")):
        text = path.read_text()
        title = text.splitlines()[0].lstrip("# ").strip()
        body = {"id": path.stem, "title": title, "source": f"samples/corpus/{path.name}", "text": text}
        response = httpx.post(f"{gateway}/v1/documents", json=body, headers=_auth(key), timeout=120)
        response.raise_for_status()
        statuses.append(response.json())
    return statuses


def ask(gateway: str, question: str, key: str) -> dict[str, Any]:
    response = httpx.post(
        f"{gateway}/v1/answers", json={"question": question}, headers=_auth(key), timeout=60
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def ask_streamed(gateway: str, question: str, key: str, out: TextIO) -> dict[str, Any]:
    """Asks with `stream: true` (Server-Sent Events, read by the CLI's client) and writes the
    answer's tokens to ``out`` as they arrive; returns the final event (answer and citations)."""
    final: dict[str, Any] | None = None
    with Gateway(gateway, key) as client:
        for event in client.answer_stream({"question": question}):
            if event.name == "token":
                out.write(event.data["text"])
                out.flush()
            elif event.name == "final":
                final = event.data
    if final is None:
        raise RuntimeError("the answer stream ended without its final event")
    return final


def render_citations(answer: dict[str, Any]) -> str:
    lines = ["Citations:"]
    for c in answer["citations"]:
        lines.append(
            f"  [{c['marker']}] {c['title']} ({c['source']}, chunk {c['chunk']}, score {c['score']:.2f})"
        )
    return "\n".join(lines)
