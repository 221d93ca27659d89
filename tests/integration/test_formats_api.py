"""`POST /v1/files` through the whole stack: Markdown, HTML, PDF and JSONL uploads are indexed with
their sections, citations carry the PDF page, bad files are refused with a named problem and leave
nothing in the index."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest

from lore_stack.stack import Stack
from tests.integration.helpers import chunk_keys
from tests.unit.test_formats import HTML_PAGE, MARKDOWN, make_pdf

pytestmark = pytest.mark.integration

TENANT = "formats-it"
PDF = make_pdf(
    "Chapter one. The espresso machine must be descaled every month with the blue tablets.",
    "Chapter two. The steam wand is purged for three seconds after frothing milk.",
    title="Espresso manual",
)
JSONL = (
    b'{"text": "The parking garage opens at six in the morning.", "building": "north", "floor": 2}\n'
    b'{"text": "Visitors register at the front desk with photo identification.", "building": "south"}\n'
)


def upload(gateway: httpx.Client, *files: tuple[str, bytes, str], tenant: str = TENANT) -> httpx.Response:
    return gateway.post(
        "/v1/files",
        params={"tenant": tenant},
        files=[("file", (name, data, content_type)) for name, data, content_type in files],
        timeout=120,
    )


@pytest.fixture(scope="module")
def uploaded(gateway: httpx.Client) -> dict[str, Any]:
    response = upload(
        gateway,
        ("handbook.md", MARKDOWN.encode(), "text/markdown"),
        ("billing.html", HTML_PAGE, "text/html"),
        ("espresso.pdf", PDF, "application/pdf"),
        ("places.jsonl", JSONL, "application/octet-stream"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_file_is_indexed_with_one_document_per_record(uploaded: dict[str, Any], stack: Stack) -> None:
    files = {f["filename"]: f["documents"] for f in uploaded["files"]}
    assert {name: [d["document_id"] for d in docs] for name, docs in files.items()} == {
        "handbook.md": ["handbook.md"],
        "billing.html": ["billing.html"],
        "espresso.pdf": ["espresso.pdf"],
        "places.jsonl": ["places.jsonl:1", "places.jsonl:2"],
    }
    for docs in files.values():
        for doc in docs:
            assert doc["state"] == "indexed", doc
            assert doc["chunks"] >= 1
            assert chunk_keys(stack, TENANT, doc["document_id"])
    assert files["handbook.md"][0]["title"] == "Handbook"
    assert files["espresso.pdf"][0]["chunks"] == 2  # one chunk per page: chunks never straddle pages


def test_a_citation_of_a_pdf_carries_its_page(gateway: httpx.Client, uploaded: dict[str, Any]) -> None:
    question = {"question": "How long is the steam wand purged after frothing?", "tenant": TENANT}
    retrieved = gateway.post("/v1/retrieve", json=question | {"top_k": 1})
    assert retrieved.status_code == 200, retrieved.text
    [top] = retrieved.json()["chunks"]
    assert (top["document_id"], top["page"], top["section"]) == ("espresso.pdf", 2, None)

    answer = gateway.post("/v1/answers", json=question)
    assert answer.status_code == 200, answer.text
    citations = answer.json()["citations"]
    assert citations, answer.json()
    assert (citations[0]["source"], citations[0]["page"]) == ("espresso.pdf", 2)


def test_markdown_and_html_chunks_carry_their_header_path(
    gateway: httpx.Client, uploaded: dict[str, Any]
) -> None:
    for question, document_id, section in [
        ("Who do I page at night?", "handbook.md", "Handbook > Escalation > Night shift"),
        ("How fast are refunds paid back to the card?", "billing.html", "Billing guide > Refunds"),
    ]:
        response = gateway.post("/v1/retrieve", json={"question": question, "tenant": TENANT, "top_k": 1})
        [top] = response.json()["chunks"]
        assert (top["document_id"], top["section"], top["page"]) == (document_id, section, None)


def test_html_boilerplate_is_not_indexed(gateway: httpx.Client, uploaded: dict[str, Any]) -> None:
    response = gateway.post(
        "/v1/retrieve",
        json={"question": "tracking code script", "tenant": TENANT, "mode": "text", "top_k": 20},
    )
    assert response.status_code == 200
    assert not any("do-not-index-this-script" in c["text"] for c in response.json()["chunks"])


def test_a_raw_body_named_by_the_query_is_indexed(gateway: httpx.Client, stack: Stack) -> None:
    response = gateway.post(
        "/v1/files",
        params={"tenant": TENANT, "filename": "raw-notes.txt"},
        content=b"The cafeteria serves lunch from noon until two.",
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    [doc] = response.json()["files"][0]["documents"]
    assert (doc["document_id"], doc["state"]) == ("raw-notes.txt", "indexed")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "zipped text " * 50)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status", "error", "mentions"),
    [
        (
            "slides.pptx",
            b"PK\x03\x04 whatever",
            "application/octet-stream",
            415,
            "unsupported_format",
            "text/markdown",
        ),
        ("picture", b"\x89PNG\r\n\x1a\n", "image/png", 415, "unsupported_format", "application/pdf"),
        ("broken.pdf", PDF[: len(PDF) // 3], "application/pdf", 422, "unreadable_document", "corrupt PDF"),
        ("empty.txt", b"", "text/plain", 422, "unreadable_document", "empty (0 bytes)"),
        ("archive.txt", _zip(), "text/plain", 422, "unreadable_document", "application/zip"),
        (
            "nav.html",
            b"<html><script>x()</script><body></body></html>",
            "text/html",
            422,
            "unreadable_document",
            "no text",
        ),
        (
            "bad.jsonl",
            b'{"text": "ok"}\nnot json\n',
            "application/x-ndjson",
            422,
            "unreadable_document",
            "line 2",
        ),
        ("big.txt", b"word " * 110_000, "text/plain", 413, "too_large", "over the limit"),
    ],
)
def test_a_bad_file_is_refused_with_its_status_and_nothing_of_the_upload_is_indexed(
    gateway: httpx.Client,
    stack: Stack,
    name: str,
    data: bytes,
    content_type: str,
    status: int,
    error: str,
    mentions: str,
) -> None:
    tenant = "formats-bad"
    good = ("good-neighbour.md", b"# Fine\n\nThis file alone would be indexed.", "text/markdown")
    response = upload(gateway, good, (name, data, content_type), tenant=tenant)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert mentions in body["detail"]
    assert name in body["detail"]
    assert chunk_keys(stack, tenant, "good-neighbour.md") == []


def test_refused_uploads_do_not_open_the_circuit_breaker(gateway: httpx.Client) -> None:
    # Dapr counts every non-2xx invocation answer against the caller's breaker; refusals are 200s
    # between the apps, so a burst of bad files leaves the route open for good ones.
    for _ in range(8):
        refused = upload(gateway, ("bad.pdf", b"%PDF-1.4 not really", "application/pdf"), tenant="formats-cb")
        assert refused.status_code == 422, refused.text
    accepted = upload(gateway, ("ok.txt", b"The gym opens at seven.", "text/plain"), tenant="formats-cb")
    assert accepted.status_code == 200, accepted.text


def test_a_request_without_a_file_is_refused(gateway: httpx.Client) -> None:
    response = gateway.post("/v1/files", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 422
    assert "filename" in response.json()["detail"]
