"""Cuts a document into the chunks that are embedded and indexed.

A document with sections (pages of a PDF, header sections of Markdown and HTML) is cut section by
section, so that no chunk straddles two pages or two headings and each chunk keeps the `page` and
`section` of the part it came from (they reach retrieval results and citations).
"""

from __future__ import annotations

from langchain_text_splitters import TextSplitter

from lore_core.contracts import DocumentIn, Section
from lore_core.index import Chunk


def chunk_document(document: DocumentIn, splitter: TextSplitter) -> list[Chunk]:
    """The document's non-blank chunks, numbered from 0 in document order.

    Args:
        document: The document; its `sections` when set, else its whole `text`.
        splitter: Cuts one piece of text into chunk texts (size and overlap are its own).

    Returns:
        The chunks, each with the page and section of the part it was cut from.
    """
    parts = document.sections or [Section(text=document.text)]
    chunks: list[Chunk] = []
    for part in parts:
        for text in splitter.split_text(part.text):
            if text.strip():
                chunks.append(Chunk(text=text, index=len(chunks), page=part.page, section=part.section))
    return chunks
