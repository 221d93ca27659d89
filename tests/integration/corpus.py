"""Synthetic documents for the crash and fault suites: reproducible, cheap to embed, and sized in
chunks (800-character chunks: 60 words are one chunk, 330 words three)."""

from __future__ import annotations

import random
from typing import Any

WORDS = (
    "invoice",
    "archive",
    "restore",
    "snapshot",
    "region",
    "volume",
    "replica",
    "quota",
    "tenant",
    "policy",
    "retention",
    "audit",
    "ledger",
    "cluster",
    "bucket",
    "export",
    "import",
    "schedule",
    "window",
    "backup",
    "vault",
    "rotation",
    "key",
    "token",
)


def documents(
    seed: str | int, count: int, *, words: tuple[int, int], tenant: str | None = None
) -> list[dict[str, Any]]:
    """``count`` documents `doc-0000`, `doc-0001`, ... of ``words`` (min, max) random words each.

    The same ``seed`` gives the same documents; with ``tenant`` each body names it.
    """
    rng = random.Random(seed)
    docs = []
    for n in range(count):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words))).capitalize() + "."
        doc: dict[str, Any] = {"id": f"doc-{n:04d}", "title": f"Doc {n}", "text": text}
        if tenant is not None:
            doc["tenant"] = tenant
        docs.append(doc)
    return docs
