"""Asynchronous ingestion: record `accepted`, then publish the ingestion event (invoked by the gateway)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from lore_core.contracts import DocumentIn, DocumentStatus
from lore_core.http import ApiError
from lore_ingest.deps import ServiceDep
from lore_ingest.service import DocumentTooLargeError

router = APIRouter()


@router.post("/documents/queue", status_code=202)
async def queue_document(document: Annotated[DocumentIn, Body()], service: ServiceDep) -> DocumentStatus:
    """Accept a document for asynchronous indexing: its status is `accepted` before this returns
    (202), or the current status when that version is already indexed or queued."""
    try:
        return await service.enqueue(document)
    except DocumentTooLargeError as exc:
        raise ApiError(413, "too_large", str(exc)) from exc
