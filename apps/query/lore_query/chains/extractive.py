"""The extractive answer chain: retrieve, then quote the best-matching sentences with citations.

It needs no language model, so it is also the fallback when a generator is unavailable or the
evidence is too weak to let one speak. Composed with LCEL:
`{question, tenant, top_k, mode, ...} -> retrieve -> select sentences -> Answer`.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableLambda

from lore_core.contracts import Answer, Citation
from lore_core.retriever import LoreRetriever, Retrieval

NO_ANSWER = "I could not find this in the indexed documents."

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "can",
    ]
)


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def select_sentences(question: str, documents: list[Document], limit: int) -> list[tuple[str, int]]:
    """Picks up to ``limit`` sentences as ``(sentence, document position)``, best first.

    A sentence scores by the share of question terms it contains, weighted by its chunk's
    retrieval score. Sentences that match no question term are used only when none does (then the
    best chunk's first sentence answers). Markdown headings are never quoted.
    """
    wanted = _terms(question)
    scored: list[tuple[float, int, str]] = []
    for position, doc in enumerate(documents):
        chunk_score = float(doc.metadata.get("score", 0.0))
        for sentence in _SENTENCE.split(doc.page_content):
            sentence = " ".join(sentence.split())
            # Headings and fragments are labels, not statements worth quoting.
            if len(sentence) < 12 or sentence.startswith("#"):
                continue
            overlap = len(wanted & _terms(sentence)) / max(len(wanted), 1)
            scored.append((overlap * (0.5 + chunk_score), position, sentence))
    scored.sort(key=lambda item: (-item[0], item[1]))
    chosen: list[tuple[str, int]] = []
    seen: set[str] = set()
    for score, position, sentence in scored:
        if len(chosen) == limit or (score <= 0 and chosen):
            break
        if sentence.lower() not in seen:
            seen.add(sentence.lower())
            chosen.append((sentence, position))
    return chosen


def citation(marker: int, document: Document) -> Citation:
    """The citation `[marker]` of a retrieved chunk (metadata as `LoreRetriever` sets it)."""
    return Citation(
        marker=marker,
        document_id=str(document.metadata["document_id"]),
        title=str(document.metadata.get("title", "")),
        source=document.metadata.get("source"),
        chunk=int(document.metadata["chunk"]),
        score=round(float(document.metadata["score"]), 4),
        text=document.page_content,
        page=document.metadata.get("page"),
        section=document.metadata.get("section"),
    )


def compose_answer(question: str, documents: list[Document], limit: int) -> Answer:
    """Builds the answer text with `[n]` markers and the matching citations."""
    if not documents:
        return Answer(answer=NO_ANSWER, citations=[], mode="extractive")
    chosen = select_sentences(question, documents, limit)
    markers: dict[int, int] = {}
    parts = []
    for sentence, position in chosen:
        marker = markers.setdefault(position, len(markers) + 1)
        parts.append(f"{sentence} [{marker}]")
    citations = [
        citation(marker, documents[position])
        for position, marker in sorted(markers.items(), key=lambda item: item[1])
    ]
    return Answer(answer=" ".join(parts) if parts else NO_ANSWER, citations=citations, mode="extractive")


def build_chain(
    *, retrieval: Retrieval, min_score: float, sentences: int
) -> Runnable[dict[str, Any], Answer]:
    """The chain's input is a `QuestionIn` as a dict: question, tenant, top_k, mode, min_score, mmr.

    An unset `min_score` means ``min_score`` (the server's evidence threshold).
    """

    def answer(inputs: dict[str, Any]) -> Answer:
        return compose_answer(inputs["question"], inputs["documents"], sentences)

    return retrieve_step(retrieval=retrieval, min_score=min_score) | RunnableLambda(answer)


def retrieve_step(*, retrieval: Retrieval, min_score: float) -> Runnable[dict[str, Any], dict[str, Any]]:
    """Adds `documents` (the retrieved chunks, best first) to the chain's input dict.

    An unset `min_score` in the input means ``min_score`` (the server's evidence threshold).
    """

    async def retrieve(inputs: dict[str, Any]) -> dict[str, Any]:
        threshold = inputs.get("min_score")
        retriever = LoreRetriever(
            retrieval=retrieval,
            tenant=inputs["tenant"],
            k=inputs["top_k"],
            mode=inputs.get("mode"),
            min_score=min_score if threshold is None else threshold,
            mmr=bool(inputs.get("mmr", False)),
            filters=inputs.get("filters"),
        )
        return {**inputs, "documents": await retriever.ainvoke(inputs["question"])}

    return RunnableLambda(retrieve)
