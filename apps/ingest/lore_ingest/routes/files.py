"""Synchronous ingestion of files (text, Markdown, HTML, PDF, JSON, JSONL): an internal route,
invoked through Dapr by the gateway's `POST /v1/files` or by any other app.

Every file of a call is parsed before anything is indexed, so a bad file leaves nothing of the
call in the index. Outcomes that depend on what was sent (an unsupported type, an unreadable or
oversized file, a bad parameter) are 200 `Refusal` bodies carrying the status the caller's API
should answer with (415, 422, 413), never a 4xx that would open the caller's circuit breaker (see
`lore_ingest.routes.documents`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from lore_core.contracts import (
    TENANT_PATTERN,
    DocumentIn,
    DocumentStatus,
    FilesIngested,
    IngestedFile,
    Refusal,
)
from lore_core.formats import (
    UPLOAD_OPENAPI,
    DocumentTooLargeError,
    UnreadableDocumentError,
    UnsupportedFormatError,
    parse_file,
)
from lore_core.settings import DocumentLimitSettings
from lore_ingest.deps import CallersDep, ServiceDep, SettingsDep
from lore_ingest.routes.documents import RefusingRoute
from lore_ingest.service import DocumentTooLargeError as TextTooLargeError

router = APIRouter(route_class=RefusingRoute)

# Documents of one call indexed at once: enough to fill the embedding batches of a JSONL file.
_CONCURRENCY = 8
_MAX_FILES = 100


@router.post("/files", openapi_extra=UPLOAD_OPENAPI)
async def ingest_files(
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    callers: CallersDep,
    tenant: Annotated[str, Query(pattern=TENANT_PATTERN)] = "default",
    text_field: Annotated[
        str, Query(min_length=1, max_length=200, description="Field holding the text of JSON/JSONL records.")
    ] = "text",
    filename: Annotated[
        str | None, Query(min_length=1, max_length=1000, description="Name of the file of a raw body.")
    ] = None,
) -> FilesIngested | Refusal:
    """Parse uploaded files (multipart `file` parts, or one raw body named by `filename`), index
    every document they hold, and return their statuses."""
    if refusal := callers.check(request, tenant):
        return refusal
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=_MAX_FILES)
        except MultiPartException as exc:
            detail = f"malformed multipart body: {exc.message}"
            return Refusal(error="invalid_request", detail=detail, status=400)
        try:
            uploads = [(name, value) for name, value in form.multi_items() if isinstance(value, UploadFile)]
            files = [(u.filename or name, u.content_type, await u.read()) for name, u in uploads]
        finally:
            await form.close()  # parts over 1 MB were spooled to temporary files
        if not files:
            detail = "the multipart body holds no file part"
            return Refusal(error="invalid_request", detail=detail, status=422)
    elif filename is None:
        return Refusal(
            error="invalid_request",
            detail="send multipart/form-data file parts, or a raw body with `filename` in the query",
            status=422,
        )
    else:
        files = [(filename, content_type or None, await request.body())]

    limits = DocumentLimitSettings(max_document_bytes=settings.max_document_bytes)
    parsed: list[tuple[str, list[DocumentIn]]] = []
    for name, media_type, data in files:
        try:
            # CPU-bound (a PDF page takes tens of ms): off the event loop, which serves other calls.
            documents = await asyncio.to_thread(
                parse_file,
                data,
                filename=name,
                content_type=media_type,
                tenant=tenant,
                text_field=text_field,
                limits=limits,
            )
        except UnsupportedFormatError as exc:
            return Refusal(error="unsupported_format", detail=str(exc), status=415)
        except DocumentTooLargeError as exc:
            return Refusal(error="too_large", detail=str(exc), status=413)
        except UnreadableDocumentError as exc:
            return Refusal(error="unreadable_document", detail=str(exc), status=422)
        parsed.append((name, documents))

    gate = asyncio.Semaphore(_CONCURRENCY)

    async def ingest(document: DocumentIn) -> DocumentStatus:
        async with gate:
            # The caller is waiting: embed ahead of queued event traffic.
            return await service.ingest(document, interactive=True)

    try:
        results = [await asyncio.gather(*(ingest(d) for d in documents)) for _, documents in parsed]
    except TextTooLargeError as exc:  # parse_file checks the same limit; kept for a changed setting
        return Refusal(error="too_large", detail=str(exc), status=413)
    return FilesIngested(
        files=[
            IngestedFile(filename=name, documents=list(statuses))
            for (name, _), statuses in zip(parsed, results, strict=True)
        ]
    )
