"""File parsing (`lore_core.formats`) and section-aware chunking (`lore_core.chunking`)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile

import pytest
from fpdf import FPDF
from langchain_text_splitters import RecursiveCharacterTextSplitter
from pydantic import ValidationError

from lore_core.chunking import chunk_document
from lore_core.contracts import DOCUMENT_ID_PATTERN, DocumentIn, Section
from lore_core.formats import (
    ACCEPTED_TYPES,
    DocumentTooLargeError,
    UnreadableDocumentError,
    UnsupportedFormatError,
    parse_file,
)
from lore_core.settings import DocumentLimitSettings


def make_pdf(*pages: str, title: str | None = None) -> bytes:
    """A real PDF with one text page per argument (an empty string makes a blank page)."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        if text:
            pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


HTML_PAGE = b"""<!doctype html>
<html><head><title>ACME help</title>
<style>body { color: red }</style>
<script>window.trackingCode = "do-not-index-this-script";</script></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/pricing">Pricing navigation link</a></li></ul></nav>
<main><article>
<h1>Billing guide</h1>
<p>Invoices are sent on the first day of each month to the billing contact of the workspace.</p>
<h2>Refunds</h2>
<p>Refunds are paid back to the original card within five business days of the request.</p>
</article></main>
<footer><p>Copyright 2026 ACME Corporation. All rights reserved footer.</p></footer>
</body></html>"""

MARKDOWN = """# Handbook

Welcome to the handbook of the support team.

## Escalation

Escalate a ticket after two hours without an answer.

### Night shift

At night, page the on-call engineer instead.

## Holidays

Holidays are booked in the HR tool.
"""


# --- formats -------------------------------------------------------------------------------------


def test_plain_text_is_one_document_named_after_the_file() -> None:
    [doc] = parse_file(b"Invoices are sent monthly.\n", filename="faq.txt", tenant="acme")
    assert doc.id == "faq.txt"
    assert doc.source == "faq.txt"
    assert doc.title == "faq"
    assert doc.tenant == "acme"
    assert doc.text == "Invoices are sent monthly.\n"
    assert doc.sections is None


def test_markdown_is_split_on_headers_with_the_header_path_kept() -> None:
    [doc] = parse_file(MARKDOWN.encode(), filename="handbook.md")
    assert doc.title == "Handbook"
    assert doc.text == MARKDOWN
    assert doc.sections is not None
    paths = [s.section for s in doc.sections]
    assert paths == [
        "Handbook",
        "Handbook > Escalation",
        "Handbook > Escalation > Night shift",
        "Handbook > Holidays",
    ]
    night = doc.sections[2]
    assert "page the on-call engineer" in night.text
    assert "Holidays" not in night.text


def test_markdown_chunks_keep_their_section() -> None:
    [doc] = parse_file(MARKDOWN.encode(), filename="handbook.md")
    chunks = chunk_document(doc, RecursiveCharacterTextSplitter(chunk_size=100, chunk_overlap=0))
    assert [c.index for c in chunks] == list(range(len(chunks)))
    on_call = [c for c in chunks if "on-call" in c.text]
    assert [c.section for c in on_call] == ["Handbook > Escalation > Night shift"]
    # No chunk straddles two sections.
    assert not any("Escalate" in c.text and "Holidays" in c.text for c in chunks)


def test_html_keeps_the_main_text_and_drops_navigation_scripts_and_footer() -> None:
    [doc] = parse_file(HTML_PAGE, filename="billing.html")
    assert "Invoices are sent on the first day" in doc.text
    assert "five business days" in doc.text
    for boilerplate in ("do-not-index-this-script", "Pricing navigation link", "footer", "color: red"):
        assert boilerplate not in doc.text
    assert doc.title == "Billing guide"
    assert doc.sections is not None
    assert [s.section for s in doc.sections] == ["Billing guide", "Billing guide > Refunds"]


def test_pdf_text_is_read_per_page_and_chunks_keep_the_page() -> None:
    data = make_pdf("The warranty lasts two years.", "", "Returns are accepted for 30 days.", title="Manual")
    [doc] = parse_file(data, filename="manual.pdf")
    assert doc.title == "Manual"
    assert doc.sections is not None
    assert [s.page for s in doc.sections] == [1, 3]  # the blank page 2 holds no text
    assert "warranty lasts two years" in doc.sections[0].text
    chunks = chunk_document(doc, RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=0))
    assert [(c.page, "30 days" in c.text) for c in chunks] == [(1, False), (3, True)]


def test_json_records_take_a_configurable_text_field_and_the_rest_as_flat_metadata() -> None:
    records = [
        {
            "body": "Reset the router.",
            "title": "Router",
            "lang": "en",
            "meta": {"year": 2024},
            "tags": ["a", "b"],
        },
        {"body": "Update the firmware.", "draft": True, "note": None},
    ]
    docs = parse_file(
        json.dumps(records).encode(), filename="kb.json", text_field="body", metadata={"collection": "kb"}
    )
    assert [d.id for d in docs] == ["kb.json:1", "kb.json:2"]
    assert [d.text for d in docs] == ["Reset the router.", "Update the firmware."]
    assert docs[0].title == "Router"
    assert docs[1].title == "kb #2"
    assert docs[0].metadata == {"lang": "en", "meta.year": 2024, "tags": "a, b", "collection": "kb"}
    assert docs[1].metadata == {"draft": True, "collection": "kb"}
    assert {d.source for d in docs} == {"kb.json"}


def test_a_json_object_is_one_record() -> None:
    [doc] = parse_file(b'{"text": "Only one.", "k": 1}', filename="one.json")
    assert (doc.id, doc.text, doc.metadata) == ("one.json:1", "Only one.", {"k": 1})


def test_jsonl_records_are_numbered_by_line_and_blank_lines_are_skipped() -> None:
    data = b'{"text": "first"}\n\n{"text": "third", "id": "x-3"}\n'
    docs = parse_file(data, filename="faq.jsonl")
    assert [d.id for d in docs] == ["faq.jsonl:1", "faq.jsonl:3"]
    assert docs[1].metadata == {"id": "x-3"}


def test_the_content_type_decides_when_the_extension_is_unknown() -> None:
    [doc] = parse_file(
        b"# Title\n\nBody text.", filename="README", content_type="text/markdown; charset=utf-8"
    )
    assert doc.title == "Title"
    [doc] = parse_file(b'{"text": "x"}', filename="export", content_type="application/x-ndjson")
    assert doc.id == "export:1"


def test_the_extension_wins_over_a_loose_content_type() -> None:
    [doc] = parse_file(MARKDOWN.encode(), filename="handbook.md", content_type="text/plain")
    assert doc.sections is not None  # parsed as Markdown


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("report.docx", None),
        ("photo", "image/png"),
        ("archive.zip", "application/zip"),
        ("data.bin", "application/octet-stream"),
        ("noextension", None),
    ],
)
def test_other_types_are_unsupported_and_the_error_names_the_accepted_types(
    filename: str, content_type: str | None
) -> None:
    with pytest.raises(UnsupportedFormatError) as caught:
        parse_file(b"something", filename=filename, content_type=content_type)
    assert filename in str(caught.value)
    for accepted in ACCEPTED_TYPES:
        assert accepted in str(caught.value)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inner.txt", "hello " * 100)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "reason"),
    [
        (b"", "empty.txt", "empty (0 bytes)"),
        (b"", "empty.pdf", "empty (0 bytes)"),
        (b"  \n\t\n", "blank.md", "no text"),
        (_zip(), "notes.txt", "application/zip"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "image.md", "image/png"),
        (bytes(range(256)) * 4, "random.txt", "not UTF-8"),
        (b"text\x00with\x00nuls", "nul.txt", "NUL"),
        (make_pdf("A page of text.")[:400], "truncated.pdf", "corrupt PDF"),
        (b"%PDF-1.7\nthis is not a pdf at all", "fake.pdf", "corrupt PDF"),
        (b"Just plain text, not a PDF.", "plain.pdf", "not a PDF"),
        (make_pdf(""), "scan.pdf", "no extractable text"),
        (b"<html><head><script>var a = 1;</script></head><body></body></html>", "empty.html", "no text"),
        (b'{"text": "fine"}\n{"text": oops}\n', "bad.jsonl", "line 2 is not JSON"),
        (b'{"text": "fine"}\n[1, 2]\n', "list.jsonl", "line 2 is a JSON list"),
        (b'{"title": "no text"}', "notext.json", "no text in the field 'text'"),
        (b"[]", "none.json", "empty JSON array"),
        (b"{broken", "broken.json", "not valid JSON"),
        (b"\n\n", "blank.jsonl", "no records"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(data: bytes, filename: str, reason: str) -> None:
    with pytest.raises(UnreadableDocumentError) as caught:
        parse_file(data, filename=filename)
    assert reason in str(caught.value)
    assert filename in str(caught.value)


def test_a_document_over_the_size_limit_is_refused_as_too_large() -> None:
    limits = DocumentLimitSettings(max_document_bytes=100)
    with pytest.raises(DocumentTooLargeError, match="over the limit of 100 bytes"):
        parse_file(b"x" * 101, filename="big.txt", limits=limits)
    with pytest.raises(DocumentTooLargeError, match="record 2"):
        parse_file(b'{"text": "ok"}\n{"text": "' + b"y" * 200 + b'"}\n', filename="r.jsonl", limits=limits)
    with pytest.raises(DocumentTooLargeError, match="page 2"):
        parse_file(make_pdf("a" * 60, "b" * 60), filename="long.pdf", limits=limits)
    # Exactly at the limit is fine.
    assert parse_file(b"x" * 100, filename="fits.txt", limits=limits)


@pytest.mark.parametrize("text", ["BMW cars are fast.", "ID3 tags hold the artist.", "GIF89a was a format."])
def test_text_that_starts_like_a_binary_signature_is_text(text: str) -> None:
    [doc] = parse_file(text.encode(), filename="note.txt")
    assert doc.text == text


def test_a_utf16_file_with_a_byte_order_mark_is_read() -> None:
    [doc] = parse_file("Grüße aus Köln".encode("utf-16"), filename="greeting.txt")
    assert doc.text == "Grüße aus Köln"


def test_ids_from_file_names_are_valid_and_distinct() -> None:
    a = parse_file(b"a", filename="my docs/a b.md")[0].document_id()
    b = parse_file(b"b", filename="my docs/a_b.md")[0].document_id()
    long = parse_file(b'{"text": "c"}', filename="x" * 300 + ".jsonl")[0].document_id()
    for value in (a, b, long):
        assert re.fullmatch(DOCUMENT_ID_PATTERN, value), value
    assert a != b
    assert long.endswith(":1")


# --- contracts ------------------------------------------------------------------------------------


def test_the_revision_of_a_document_without_sections_is_unchanged() -> None:
    doc = DocumentIn(id="d", title="T", text="body", metadata={"k": 1})
    legacy = json.dumps(["default", "T", None, {"k": 1}, "body"], sort_keys=True, ensure_ascii=False)
    assert doc.revision() == hashlib.sha256(legacy.encode()).hexdigest()


def test_the_revision_includes_the_sections() -> None:
    text = "page one\n\npage two"
    one = DocumentIn(text=text, sections=[Section(text="page one", page=1), Section(text="page two", page=2)])
    other = DocumentIn(
        text=text, sections=[Section(text="page one", page=1), Section(text="page two", page=3)]
    )
    plain = DocumentIn(text=text)
    assert len({one.revision(), other.revision(), plain.revision()}) == 3


def test_sections_cannot_hold_more_text_than_the_document() -> None:
    with pytest.raises(ValidationError, match="sections hold more text"):
        DocumentIn(text="short", sections=[Section(text="a much longer section than the text")])


def test_a_document_without_sections_is_chunked_as_before() -> None:
    splitter = RecursiveCharacterTextSplitter(chunk_size=50, chunk_overlap=10)
    text = "word " * 60
    chunks = chunk_document(DocumentIn(text=text), splitter)
    assert [c.text for c in chunks] == [t for t in splitter.split_text(text) if t.strip()]
    assert all(c.page is None and c.section is None for c in chunks)
