"""Text-query building, fusion and MMR of `lore_core.search`, and the retrieval contracts (no Redis)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from lore_core.contracts import QuestionIn, RetrieveIn
from lore_core.search import (
    MAX_QUERY_TERMS,
    QUERY_STOPWORDS,
    REDISEARCH_STOPWORDS,
    Match,
    fuse,
    mmr,
    query_terms,
    tenant_filter,
    text_clause,
)

# What a RediSearch query lexer sees as plain term characters: letters and digits only.
_PLAIN = re.compile(r"^[^\W_]+$")


def _match(key: str, vector: list[float], score: float = 0.0) -> Match:
    v = np.asarray(vector, dtype=np.float32)
    v = v / np.linalg.norm(v)
    return Match(
        key=key,
        document_id=key,
        title="",
        source=None,
        chunk=0,
        text=key,
        score=score,
        similarity=0.0,
        embedding=v,
    )


def test_stop_words_before_a_real_term_are_dropped() -> None:
    assert query_terms("(is|an|inverse)") == ["inverse"]
    assert query_terms("(a|the|hip)") == ["hip"]
    assert query_terms("There is an inverse relationship between price and demand") == [
        "inverse",
        "relationship",
        "between",
        "price",
        "demand",
    ]


def test_a_question_of_only_stop_words_and_syntax_has_no_terms() -> None:
    assert query_terms("Is it the one? (a|the) @title:{x} => [KNN 10 @v $v] -*~%") == [
        "one",
        "title",
        "x",
        "knn",
        "10",
        "v",
    ]
    assert query_terms("is a the ... ||| ()") == []


def test_terms_are_normalised_deduplicated_and_bounded() -> None:
    assert query_terms("\uff29\uff33 Café CAFÉ \ufb01le XR7-2000") == ["café", "file", "xr7", "2000"]
    assert query_terms("word " * 100) == ["word"]
    many = " ".join(f"t{n}" for n in range(100))
    assert len(query_terms(many)) == MAX_QUERY_TERMS
    assert query_terms("x" * 41 + " ok") == ["ok"]


def test_redisearch_default_stop_words_are_all_dropped() -> None:
    assert REDISEARCH_STOPWORDS <= QUERY_STOPWORDS
    assert query_terms(" ".join(sorted(REDISEARCH_STOPWORDS))) == []
    assert query_terms(" ".join(w.upper() for w in REDISEARCH_STOPWORDS)) == []


@given(st.text(max_size=300))
def test_any_text_gives_plain_terms_that_are_not_stop_words(text: str) -> None:
    terms = query_terms(text)
    assert len(terms) <= MAX_QUERY_TERMS
    assert len(set(terms)) == len(terms)
    for term in terms:
        assert _PLAIN.match(term), term
        assert term not in REDISEARCH_STOPWORDS
        assert term == term.casefold()


def test_text_clause_pushes_the_tenant_filter_into_every_term() -> None:
    clause = text_clause(["inverse", "demand"], tenant_filter("acme"))
    assert clause == "(@title|text:inverse @tenant:{acme}) | (@title|text:demand @tenant:{acme})"


@pytest.mark.parametrize("tenant", ["", "a|b", "x} | @tenant:{other", "acme*", "Acme", "é", "a b", "-x"])
def test_a_tenant_outside_the_pattern_is_refused(tenant: str) -> None:
    with pytest.raises(ValueError, match="invalid tenant"):
        tenant_filter(tenant)


def test_tenant_with_a_hyphen_is_escaped() -> None:
    assert str(tenant_filter("acme-eu")) == "@tenant:{acme\\-eu}"


def test_reciprocal_rank_fusion_rewards_agreement_and_weights() -> None:
    a, b, c = _match("a", [1, 0]), _match("b", [0, 1]), _match("c", [1, 1])
    fused = fuse([([a, b, c], 1.0), ([c, b], 1.0)], rrf_k=60)
    assert [m.key for m in fused] == ["c", "b", "a"]
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert [m.key for m in fuse([([a, b], 3.0), ([b, a], 1.0)], rrf_k=60)] == ["a", "b"]


def test_mmr_skips_a_near_duplicate_of_a_chunk_already_chosen() -> None:
    query = np.asarray([1.0, 0.2, 0.0], dtype=np.float32)
    first = _match("first", [1.0, 0.12, 0.0])
    twin = _match("twin", [1.0, 0.11, 0.0])
    other = _match("other", [0.0, 1.0, 0.0])
    assert [m.key for m in mmr([first, twin, other], query, k=2, lambda_=0.5)] == ["first", "other"]
    assert [m.key for m in mmr([first, twin, other], query, k=2, lambda_=1.0)] == ["first", "twin"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": "ok", "top_k": 0}, "top_k"),
        ({"question": "ok", "top_k": 101}, "top_k"),
        ({"question": "ok", "mode": "bm25"}, "mode"),
        ({"question": ""}, "question"),
        ({"question": "   "}, "question"),
        ({"question": "x" * 10_240}, "question"),
        ({"question": "ok", "min_score": 2}, "min_score"),
        ({"question": "ok", "tenant": "Other|x"}, "tenant"),
    ],
)
def test_invalid_retrieval_options_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RetrieveIn.model_validate(body)
    assert {str(e["loc"][0]) for e in caught.value.errors()} == {field}


def test_answers_accept_the_same_retrieval_options() -> None:
    question = QuestionIn.model_validate({"question": "why?", "mode": "text", "min_score": 0.3, "mmr": True})
    assert (question.mode, question.min_score, question.mmr) == ("text", 0.3, True)
    with pytest.raises(ValidationError):
        QuestionIn.model_validate({"question": "why?", "top_k": 21})
    assert RetrieveIn(question="why?").top_k == 10
