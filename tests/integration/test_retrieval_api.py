"""`POST /v1/retrieve` and the retrieval options of `POST /v1/answers`, through the whole stack."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration

DOCS = [
    {
        "id": "router-manual",
        "tenant": "retrieve-a",
        "title": "Router manual",
        "source": "https://docs.test/router?lang=en,fr",
        "metadata": {"collection": "manuals"},
        "text": "The Northwind Aero Router (model NX-4471B) supports mesh roaming. "
        "Firmware 4.2 fixed dropped connections.",
    },
    {
        "id": "camera-manual",
        "tenant": "retrieve-a",
        "title": "Camera manual",
        "metadata": {"collection": "manuals"},
        "text": "The Northwind Halo Camera (model NX-9313D) has night vision and a two-year warranty.",
    },
    {
        "id": "leave-policy",
        "tenant": "retrieve-a",
        "title": "Paid leave",
        "text": "Staff accrue two and a half days of paid leave for every month worked.",
    },
    {
        "id": "secret-router",
        "tenant": "retrieve-b",
        "title": "Other tenant",
        "source": "https://docs.test/router?lang=en,fr",
        "metadata": {"collection": "manuals"},
        "text": "The Northwind Aero Router (model NX-4471B) is discontinued in tenant b.",
    },
]


@pytest.fixture(scope="module")
def indexed(gateway: httpx.Client) -> None:
    for doc in DOCS:
        response = gateway.post("/v1/documents", json=doc)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("mode", ["vector", "text", "hybrid"])
def test_every_mode_finds_the_product_code_within_the_tenant(
    gateway: httpx.Client, indexed: None, mode: str
) -> None:
    response = gateway.post(
        "/v1/retrieve", json={"question": "firmware of NX-4471B?", "tenant": "retrieve-a", "mode": mode}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == mode
    assert body["chunks"][0]["document_id"] == "router-manual"
    assert {c["document_id"] for c in body["chunks"]} <= {"router-manual", "camera-manual", "leave-policy"}
    assert all(-1.0 <= c["similarity"] <= 1.0 for c in body["chunks"])


def test_default_mode_is_hybrid_and_top_k_and_min_score_apply(gateway: httpx.Client, indexed: None) -> None:
    body = gateway.post(
        "/v1/retrieve",
        json={"question": "how much vacation do employees earn", "tenant": "retrieve-a", "top_k": 1},
    ).json()
    assert body["mode"] == "hybrid"
    assert [c["document_id"] for c in body["chunks"]] == ["leave-policy"]
    strict = gateway.post(
        "/v1/retrieve",
        json={"question": "how much vacation do employees earn", "tenant": "retrieve-a", "min_score": 0.99},
    ).json()
    assert strict["chunks"] == []


def test_stop_word_unions_are_answered_and_redis_stays_up(gateway: httpx.Client, indexed: None) -> None:
    for question in ("(is|an|inverse)", "(a|the|hip)", "There is an inverse relationship"):
        for mode in ("text", "hybrid"):
            response = gateway.post(
                "/v1/retrieve", json={"question": question, "tenant": "retrieve-a", "mode": mode}
            )
            assert response.status_code == 200, response.text
    assert (
        gateway.post("/v1/retrieve", json={"question": "NX-4471B", "tenant": "retrieve-a"}).status_code == 200
    )


def test_answers_take_the_retrieval_options(gateway: httpx.Client, indexed: None) -> None:
    response = gateway.post(
        "/v1/answers",
        json={
            "question": "Which model has night vision?",
            "tenant": "retrieve-a",
            "mode": "text",
            "mmr": True,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["citations"][0]["document_id"] == "camera-manual"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"question": "ok", "top_k": 500}, "top_k"),
        ({"question": "ok", "top_k": 0}, "top_k"),
        ({"question": "ok", "mode": "fuzzy"}, "mode"),
        ({"question": ""}, "question"),
        ({"question": "x" * 10_240}, "question"),
        ({"question": "ok", "tenant": "b} | @tenant:{retrieve-b"}, "tenant"),
    ],
)
def test_bad_retrieval_options_are_422_naming_the_field(
    gateway: httpx.Client, body: dict[str, object], field: str
) -> None:
    for path in ("/v1/retrieve", "/v1/answers"):
        response = gateway.post(path, json=body)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == "invalid_request"
        assert field in {problem["field"] for problem in response.json()["detail"]}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"collection": "manuals"}, {"router-manual", "camera-manual"}),
        ({"source": "https://docs.test/router?lang=en,fr"}, {"router-manual"}),
        ({"collection": ["manuals"], "document_id": ["camera-manual", "secret-router"]}, {"camera-manual"}),
        ({"collection": "Manuals"}, set()),
    ],
)
def test_filters_narrow_retrieval_within_the_tenant(
    gateway: httpx.Client, indexed: None, filters: dict[str, object], expected: set[str]
) -> None:
    for mode in ("vector", "text", "hybrid"):
        response = gateway.post(
            "/v1/retrieve",
            json={"question": "Northwind manual", "tenant": "retrieve-a", "mode": mode, "filters": filters},
        )
        assert response.status_code == 200, response.text
        found = {c["document_id"] for c in response.json()["chunks"]}
        assert found == expected or (mode == "text" and found <= expected), (mode, found)
    answer = gateway.post(
        "/v1/answers",
        json={"question": "Northwind manual", "tenant": "retrieve-a", "mode": "vector", "filters": filters},
    )
    assert answer.status_code == 200, answer.text
    assert {c["document_id"] for c in answer.json()["citations"]} <= expected


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        # Only the index schema knows these: lore-query refuses (a 200 `Refusal`), the gateway says 422.
        ({"metadata": {"colour": "red"}}, "filters.metadata.colour"),
        ({"metadata": {"collection": {"gte": 1}}}, "filters.metadata.collection"),
        # The shape: the gateway refuses before invoking.
        ({"metadata": {"collection": {"gte": 3, "lte": 1}}}, "filters.metadata.collection"),
        ({"source": ""}, "filters.source"),
        ({"colour": "red"}, "filters.colour"),
    ],
)
def test_bad_filters_are_422_naming_the_field(
    gateway: httpx.Client, filters: dict[str, object], field: str
) -> None:
    for path in ("/v1/retrieve", "/v1/answers"):
        response = gateway.post(path, json={"question": "ok", "tenant": "retrieve-a", "filters": filters})
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == "invalid_request"
        assert [problem["field"] for problem in response.json()["detail"]] == [field]
