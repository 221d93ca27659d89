from __future__ import annotations

import pytest
from pydantic import ValidationError

from lore_core.contracts import DocumentIn, QuestionIn


def test_document_id_defaults_to_a_stable_content_hash() -> None:
    a = DocumentIn(text="same text")
    b = DocumentIn(text="same text")
    other_tenant = DocumentIn(text="same text", tenant="acme")
    assert a.document_id() == b.document_id()
    assert len(a.document_id()) == 32
    assert other_tenant.document_id() != a.document_id()


def test_explicit_document_id_wins() -> None:
    assert DocumentIn(id="guide-1", text="x").document_id() == "guide-1"


@pytest.mark.parametrize(
    "payload",
    [
        {"text": ""},
        {"text": " \n\t "},
        {"text": "ok", "unknown": 1},
        {"text": "ok", "tenant": "Upper"},
        {"text": "ok", "id": "../../etc/passwd"},
        {"text": "ok", "id": "a" * 200},
    ],
)
def test_invalid_documents_are_refused(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DocumentIn.model_validate(payload)


def test_question_bounds() -> None:
    assert QuestionIn(question="why?").top_k == 4
    with pytest.raises(ValidationError):
        QuestionIn(question="   ")
    with pytest.raises(ValidationError):
        QuestionIn(question="why?", top_k=0)
