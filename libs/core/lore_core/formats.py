"""Turns uploaded files into documents: plain text, Markdown, HTML, PDF, JSON and JSONL.

`parse_file` detects the format from the file's extension and content type, checks the bytes
against it (a zip archive named `notes.txt` is refused, not indexed as garbage) and returns one
`DocumentIn` per document the file holds: one for text, Markdown, HTML and PDF, one per record for
JSON and JSONL. Markdown, HTML and PDF documents carry their sections (header path, page) so that
their chunks keep them for citations.

Parsing is done by maintained libraries: LangChain's `MarkdownHeaderTextSplitter` for Markdown,
trafilatura for the main text of HTML pages (navigation, scripts and boilerplate dropped), pypdf
for the text of each PDF page, and `filetype` to name binary content found where text was expected.
trafilatura and pypdf are imported on first use: the gateway imports this module for
`ACCEPTED_TYPES` only, and they take seconds to import.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

import filetype  # type: ignore[import-untyped]
from langchain_text_splitters import MarkdownHeaderTextSplitter
from pydantic import ValidationError

from lore_core.contracts import DOCUMENT_ID_PATTERN, DocumentIn, Section
from lore_core.settings import DocumentLimitSettings

Metadata = dict[str, str | int | float | bool]


class Format(StrEnum):
    """A readable file format; the value is its canonical media type."""

    TEXT = "text/plain"
    MARKDOWN = "text/markdown"
    HTML = "text/html"
    PDF = "application/pdf"
    JSON = "application/json"
    JSONL = "application/x-ndjson"


ACCEPTED_TYPES: tuple[str, ...] = tuple(f.value for f in Format)

_BINARY = {"type": "string", "format": "binary"}
# The OpenAPI request body of an upload route (`openapi_extra`): multipart `file` parts, or one raw
# body of an accepted type. FastAPI cannot derive it, because those routes read the body themselves.
UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "array", "items": _BINARY}},
                    "required": ["file"],
                }
            },
            **{t: {"schema": _BINARY} for t in ACCEPTED_TYPES},
        },
    }
}

_BY_EXTENSION: dict[str, Format] = {
    ".txt": Format.TEXT,
    ".text": Format.TEXT,
    ".md": Format.MARKDOWN,
    ".markdown": Format.MARKDOWN,
    ".html": Format.HTML,
    ".htm": Format.HTML,
    ".xhtml": Format.HTML,
    ".pdf": Format.PDF,
    ".json": Format.JSON,
    ".jsonl": Format.JSONL,
    ".ndjson": Format.JSONL,
}
_BY_TYPE: dict[str, Format] = {
    **{f.value: f for f in Format},
    "text/x-markdown": Format.MARKDOWN,
    "application/xhtml+xml": Format.HTML,
    "application/x-pdf": Format.PDF,
    "text/json": Format.JSON,
    "application/jsonl": Format.JSONL,
    "application/x-jsonlines": Format.JSONL,
    "application/jsonlines": Format.JSONL,
    "application/ndjson": Format.JSONL,
}
# Types that say nothing about the content (what curl and browsers send for unknown extensions).
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown"})

_MARKDOWN_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
_SECTION_SEPARATOR = " > "


class UnsupportedFormatError(ValueError):
    """The file is of a type Lore does not read (HTTP 415); the message names the accepted types."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not a supported format; accepted types: {', '.join(ACCEPTED_TYPES)}")


class UnreadableDocumentError(ValueError):
    """The file claims a supported format but cannot be read as one: empty, corrupt, binary, no
    text, a JSONL line that is not JSON (HTTP 422, or one failed file of a job)."""


class DocumentTooLargeError(UnreadableDocumentError):
    """A document of the file has more text than `DocumentLimitSettings.max_document_bytes` (HTTP 413)."""


def detect_format(filename: str, content_type: str | None) -> Format:
    """The format named by the file's extension or, when the extension is unknown, its content type.

    The extension wins because clients label uploads loosely (`text/plain` for Markdown,
    `application/octet-stream` for anything); the bytes are checked against the result later.

    Raises:
        UnsupportedFormatError: neither names an accepted format.
    """
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix in _BY_EXTENSION:
        return _BY_EXTENSION[suffix]
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _BY_TYPE:
        return _BY_TYPE[media]
    if media in _GENERIC_TYPES:
        kind = f"extension {suffix!r}" if suffix else "no extension and no content type"
        raise UnsupportedFormatError(f"{filename} ({kind})")
    raise UnsupportedFormatError(f"{filename} ({media})")


def parse_file(
    data: bytes,
    *,
    filename: str,
    content_type: str | None = None,
    tenant: str = "default",
    text_field: str = "text",
    metadata: Metadata | None = None,
    limits: DocumentLimitSettings | None = None,
) -> list[DocumentIn]:
    """Parses one file into the documents it holds.

    Args:
        data: the file's bytes.
        filename: the file's name (a relative path is fine): it picks the format with
            `content_type`, becomes each document's `source` and the base of its id (`guide.md`,
            `faq.jsonl:3` for the record on line 3; characters an id cannot hold are replaced and
            a hash of the name is appended).
        content_type: the media type the client sent, used when the extension is unknown.
        tenant: tenant of the documents.
        text_field: for JSON and JSONL, the field of each record that holds its text; the other
            fields become flat metadata (nested objects as dotted keys, lists joined by commas).
        metadata: added to every document (and winning over a record's own fields of that name).
        limits: the size limit of one document's text; default: `DocumentLimitSettings()`.

    Returns:
        The documents, in file order (never empty).

    Raises:
        UnsupportedFormatError: not a format Lore reads (HTTP 415).
        DocumentTooLargeError: a document's text is over the limit (HTTP 413).
        UnreadableDocumentError: the bytes do not hold what the format promises (HTTP 422).
    """
    fmt = detect_format(filename, content_type)
    if not data:
        raise UnreadableDocumentError(f"{filename} is empty (0 bytes)")
    max_bytes = (limits or DocumentLimitSettings()).max_document_bytes
    builder = _Builder(filename=filename, tenant=tenant, metadata=metadata or {}, max_bytes=max_bytes)
    if fmt is Format.PDF:
        return [_parse_pdf(data, builder)]
    text = _decode(data, filename, fmt)
    if fmt is Format.JSON:
        return _parse_records(_json_records(text, filename), builder, text_field)
    if fmt is Format.JSONL:
        return _parse_records(_jsonl_records(text, filename), builder, text_field)
    if fmt is Format.HTML:
        return [_parse_html(text, builder)]
    if not text.strip():
        raise UnreadableDocumentError(f"{filename} holds no text (only whitespace)")
    if fmt is Format.MARKDOWN:
        return [_parse_markdown(text, builder)]
    return [builder.document(text, title=builder.stem)]


class _Builder:
    """Makes the documents of one file: ids, source, tenant, metadata and the size check."""

    def __init__(self, *, filename: str, tenant: str, metadata: Metadata, max_bytes: int) -> None:
        self.filename = filename
        self.tenant = tenant
        self.metadata = metadata
        self.max_bytes = max_bytes
        self.stem = PurePosixPath(filename.replace("\\", "/")).stem or filename
        self.base_id = _id_base(filename)

    def document(
        self,
        text: str,
        *,
        title: str,
        record: int | None = None,
        sections: list[Section] | None = None,
        fields: Metadata | None = None,
    ) -> DocumentIn:
        where = f"{self.filename} record {record}" if record is not None else self.filename
        size = len(text.encode())
        if size > self.max_bytes:
            raise DocumentTooLargeError(
                f"{where}: its text is {size} bytes, over the limit of {self.max_bytes} bytes"
            )
        try:
            return DocumentIn(
                id=self.base_id if record is None else f"{self.base_id}:{record}",
                tenant=self.tenant,
                title=title[:500],
                source=self.filename[:2000],
                text=text,
                metadata={**(fields or {}), **self.metadata},
                sections=sections if _positioned(sections) else None,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UnreadableDocumentError(f"{where}: {problems}") from None


def _positioned(sections: list[Section] | None) -> bool:
    """Whether sections tell more than the text does: a page or header path, or several parts."""
    if not sections:
        return False
    return len(sections) > 1 or sections[0].page is not None or sections[0].section is not None


_ID_INVALID = re.compile(r"[^A-Za-z0-9._:-]")
_ID_MAX = 100  # leaves room for `:<record>` and a hash within the 128 characters of an id


def _id_base(filename: str) -> str:
    """A document id from a file name: the name itself when it is a valid id, else a cleaned
    name plus 8 hex digits of its hash (so that `a b.md` and `a_b.md` stay two documents)."""
    cleaned = _ID_INVALID.sub("_", filename).lstrip("._:-")[:_ID_MAX] or "file"
    if cleaned == filename and re.fullmatch(DOCUMENT_ID_PATTERN, cleaned):
        return cleaned
    digest = hashlib.sha256(filename.encode()).hexdigest()[:8]
    return f"{cleaned[: _ID_MAX - 9]}-{digest}"


def _decode(data: bytes, filename: str, fmt: Format) -> str:
    """The bytes of a text format as text, refusing binary content with a reason that names it.

    Text is recognised by decoding, not by magic numbers: those are a few bytes long and plain
    text can start with one (`BMW ...` is a BMP signature, `ID3 ...` an MP3 one). Only content that
    is not text is named by its signature (`filetype`).
    """
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = data.decode(encoding)
        problem = "NUL bytes" if "\x00" in text else None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8: invalid byte at offset {exc.start}"
    if problem is None:
        return text
    kind = filetype.guess(data)
    found = f"{kind.mime} content" if kind is not None else "binary content"
    raise UnreadableDocumentError(f"{filename} should be {fmt.value} but holds {found} ({problem})")


def _parse_markdown(text: str, builder: _Builder) -> DocumentIn:
    """One document whose sections are the text under each header (header path as `section`)."""
    splitter = MarkdownHeaderTextSplitter(_MARKDOWN_HEADERS, strip_headers=False)
    sections: list[Section] = []
    title = ""
    for part in splitter.split_text(text):
        if not part.page_content.strip():
            continue
        path = [str(part.metadata[key]) for _, key in _MARKDOWN_HEADERS if key in part.metadata]
        title = title or str(part.metadata.get("h1", ""))
        # The splitter joins a section's lines with Markdown hard breaks ("  \n"); plain newlines
        # keep the sections within the document's text.
        body = part.page_content.replace("  \n", "\n")
        sections.append(Section(text=body, section=_SECTION_SEPARATOR.join(path)[:1000] or None))
    return builder.document(text, title=title or builder.stem, sections=sections)


@functools.cache
def _trafilatura_config() -> Any:
    from trafilatura.settings import use_config

    config = use_config()
    # trafilatura's defaults drop or fall back on pages with less than 250 characters of text;
    # short pages (a FAQ entry) are normal documents here.
    for key in ("MIN_EXTRACTED_SIZE", "MIN_OUTPUT_SIZE", "MIN_EXTRACTED_COMM_SIZE", "MIN_OUTPUT_COMM_SIZE"):
        config.set("DEFAULT", key, "1")
    return config


def _parse_html(html: str, builder: _Builder) -> DocumentIn:
    """The main text of a page without navigation, scripts, styles and footers. trafilatura renders
    it as Markdown, so the page's headings become sections (and its first `h1` the title)."""
    import trafilatura

    try:
        markdown = trafilatura.extract(
            html,
            output_format="markdown",
            include_formatting=True,
            include_comments=False,
            include_tables=True,
            config=_trafilatura_config(),
        )
    except Exception as exc:  # lxml raises many types on broken markup; the reason is what matters
        raise UnreadableDocumentError(f"{builder.filename} is not readable HTML: {exc}") from None
    if not markdown or not markdown.strip():
        raise UnreadableDocumentError(f"{builder.filename}: the HTML page has no text")
    return _parse_markdown(markdown, builder)


def _parse_pdf(data: bytes, builder: _Builder) -> DocumentIn:
    """One document whose sections are the pages that hold text (`page` is 1-based)."""
    import pypdf
    from pypdf.errors import PyPdfError

    if data.lstrip()[:5] != b"%PDF-":
        kind = filetype.guess(data)
        found = f"{kind.mime} content" if kind else "no PDF header"
        raise UnreadableDocumentError(f"{builder.filename} is not a PDF ({found})")
    sections: list[Section] = []
    size = 0
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocumentError(f"{builder.filename} is an encrypted PDF")
        title = (reader.metadata.title if reader.metadata else None) or builder.stem
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            if not text.strip():
                continue
            size += len(text.encode()) + 2
            if size > builder.max_bytes:  # stop early: compressed pages can expand a lot
                raise DocumentTooLargeError(
                    f"{builder.filename}: its text is over the limit of {builder.max_bytes} bytes "
                    f"at page {number}"
                )
            sections.append(Section(text=text, page=number))
    except UnreadableDocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError) as exc:
        # pypdf raises more than its own errors on damaged files (seen: KeyError, AttributeError).
        raise UnreadableDocumentError(f"{builder.filename} is a corrupt PDF: {exc}") from None
    if not sections:
        raise UnreadableDocumentError(
            f"{builder.filename}: the PDF has no extractable text (scanned images need OCR first)"
        )
    text = "\n\n".join(s.text for s in sections)
    return builder.document(text, title=str(title), sections=sections)


def _json_records(text: str, filename: str) -> Iterator[tuple[int, Any]]:
    """Records of a JSON file: an array of objects (numbered from 1) or one object (number 1)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableDocumentError(
            f"{filename} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if isinstance(value, list):
        if not value:
            raise UnreadableDocumentError(f"{filename} is an empty JSON array")
        yield from enumerate(value, start=1)
    else:
        yield 1, value


def _jsonl_records(text: str, filename: str) -> Iterator[tuple[int, Any]]:
    """Records of a JSONL file numbered by line (blank lines skipped)."""
    found = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise UnreadableDocumentError(f"{filename} line {number} is not JSON: {exc.msg}") from None
        found = True
    if not found:
        raise UnreadableDocumentError(f"{filename} holds no records (only blank lines)")


def _parse_records(
    records: Iterator[tuple[int, Any]], builder: _Builder, text_field: str
) -> list[DocumentIn]:
    kind = "line" if builder.filename.lower().endswith((".jsonl", ".ndjson")) else "record"
    documents: list[DocumentIn] = []
    for number, record in records:
        where = f"{builder.filename} {kind} {number}"
        if not isinstance(record, dict):
            raise UnreadableDocumentError(f"{where} is a JSON {type(record).__name__}, not an object")
        text = record.get(text_field)
        if not isinstance(text, str) or not text.strip():
            raise UnreadableDocumentError(f"{where} has no text in the field {text_field!r}")
        title = record.get("title")
        fields = _flatten({k: v for k, v in record.items() if k not in (text_field, "title")})
        documents.append(
            builder.document(
                text,
                title=title if isinstance(title, str) else f"{builder.stem} #{number}",
                record=number,
                fields=fields,
            )
        )
    return documents


def _flatten(value: dict[str, Any], prefix: str = "") -> Metadata:
    """Flat metadata from a JSON object: nested objects as dotted keys, lists of scalars joined by
    `, `, other lists as JSON text; nulls are dropped."""
    flat: Metadata = {}
    scalar: Callable[[Any], bool] = lambda v: isinstance(v, str | int | float | bool)  # noqa: E731
    for key, item in value.items():
        name = f"{prefix}{key}"
        if item is None:
            continue
        if isinstance(item, dict):
            flat.update(_flatten(item, prefix=f"{name}."))
        elif isinstance(item, list):
            flat[name] = (
                ", ".join(str(v) for v in item)
                if all(scalar(v) for v in item)
                else json.dumps(item, ensure_ascii=False)
            )
        elif scalar(item):
            flat[name] = item
    return flat
