from __future__ import annotations

from langchain_core.documents import Document

from lore_query.chains.extractive import NO_ANSWER, compose_answer, select_sentences


def _doc(doc_id: str, text: str, score: float, chunk: int = 0) -> Document:
    return Document(
        page_content=text,
        metadata={
            "document_id": doc_id,
            "title": doc_id.title(),
            "source": None,
            "chunk": chunk,
            "score": score,
        },
    )


DOCS = [
    _doc("retention", "Deleted files are kept for 30 days. After that they are purged for good.", 0.71),
    _doc("support", "Support answers chat from 08:00 to 20:00. Phone support is for enterprise plans.", 0.22),
]


def test_answer_quotes_matching_sentences_with_markers_and_citations() -> None:
    answer = compose_answer("How long are deleted files kept?", DOCS, limit=2)
    assert answer.answer.startswith("Deleted files are kept for 30 days. [1]")
    assert answer.citations[0].document_id == "retention"
    assert answer.citations[0].marker == 1
    assert answer.mode == "extractive"
    assert all(f"[{c.marker}]" in answer.answer for c in answer.citations)


def test_no_documents_means_an_explicit_no_answer() -> None:
    answer = compose_answer("anything", [], limit=3)
    assert answer.answer == NO_ANSWER
    assert answer.citations == []


def test_sentences_without_question_terms_are_not_padded_in() -> None:
    chosen = select_sentences("deleted files purged", DOCS, limit=5)
    assert [position for _, position in chosen] == [0, 0]


def test_citations_are_numbered_in_order_of_first_use() -> None:
    docs = [_doc("a", "Alpha beta gamma here.", 0.5), _doc("b", "Gamma delta epsilon here.", 0.9)]
    answer = compose_answer("gamma delta", docs, limit=2)
    assert [c.document_id for c in answer.citations] == ["b", "a"]
    assert [c.marker for c in answer.citations] == [1, 2]


def test_markdown_headings_are_not_quoted() -> None:
    doc = _doc("support", "# Support hours\n\nSupport is open from 08:00 to 20:00 on weekdays.", 0.6)
    answer = compose_answer("When is support open?", [doc], limit=3)
    assert answer.answer == "Support is open from 08:00 to 20:00 on weekdays. [1]"
