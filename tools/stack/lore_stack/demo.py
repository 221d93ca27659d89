"""The `make run` demonstration: ingest the sample corpus through the gateway, then ask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


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


def render(question: str, answer: dict[str, Any]) -> str:
    lines = [f"Q: {question}", f"A: {answer['answer']}", "Citations:"]
    for c in answer["citations"]:
        lines.append(
            f"  [{c['marker']}] {c['title']} ({c['source']}, chunk {c['chunk']}, score {c['score']:.2f})"
        )
    return "\n".join(lines)
