"""What `lore ingest PATH...` uploads: files, directories (recursive) and glob patterns.

A file named on the command line is always sent (the gateway decides whether it can parse it and
says why not); from directories only the types the gateway parses are collected, skipping hidden
files and folders (`.git`, `.DS_Store`), so `lore ingest .` in a repository does what one means.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lore_cli.client import Upload

SUFFIXES = frozenset({".md", ".markdown", ".html", ".htm", ".pdf", ".json", ".jsonl", ".txt"})
_GLOB_CHARS = frozenset("*?[")


@dataclass
class Expansion:
    """The files found for the arguments, in argument order, and the arguments that named nothing."""

    uploads: list[Upload] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def expand(arguments: Sequence[str]) -> Expansion:
    """Files for `lore ingest`'s arguments, each once (the first name it was reached by wins).

    A glob is expanded by Python (`**` spans folders) so that quoted patterns work too, and on
    shells that pass them through unexpanded. An argument that is neither an existing path nor a
    pattern matching a file is reported in `missing`.
    """
    found = Expansion()
    seen: set[Path] = set()
    for argument in arguments:
        paths = _matches(argument)
        if not paths:
            found.missing.append(argument)
        for path in paths:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                found.uploads.append(Upload(path=path, name=_name(path)))
    return found


def _matches(argument: str) -> list[Path]:
    path = Path(argument)
    if path.is_file():
        return [path]
    if path.is_dir():
        return list(_walk(path))
    if _GLOB_CHARS.isdisjoint(argument):
        return []
    files: list[Path] = []
    for match in sorted(glob.glob(argument, recursive=True)):
        hit = Path(match)
        files.extend([hit] if hit.is_file() else _walk(hit) if hit.is_dir() else [])
    return files


def _walk(folder: Path) -> Iterator[Path]:
    """The parseable files under a folder, in sorted order, hidden entries skipped."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in SUFFIXES:
                yield Path(root, name)


def _name(path: Path) -> str:
    """The name a file is uploaded under (it becomes the document's source): the path as given."""
    return Path(os.path.normpath(path)).as_posix()


def batches(uploads: Iterable[Upload], *, max_files: int, max_bytes: int) -> Iterator[list[Upload]]:
    """Consecutive groups of at most `max_files` files and `max_bytes` bytes (a bigger file goes alone)."""
    batch: list[Upload] = []
    size = 0
    for upload in uploads:
        try:
            length = upload.path.stat().st_size
        except OSError:  # gone or unreadable: reading it fails and names the reason
            length = 0
        if batch and (len(batch) >= max_files or size + length > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(upload)
        size += length
    if batch:
        yield batch
