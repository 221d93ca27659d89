"""Synchronous ingestion and status, invoked by the gateway through Dapr."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from lore_core.contracts import (
    DOCUMENT_ID_PATTERN,
    TENANT_PATTERN,
    DocumentDeleted,
    DocumentIn,
    DocumentStatus,
)
from lore_core.http import ApiError
from lore_ingest.deps import ServiceDep
from lore_ingest.service import DocumentTooLargeError

router = APIRouter()


@router.post("/documents")
async def ingest_document(document: Annotated[DocumentIn, Body()], service: ServiceDep) -> DocumentStatus:
    """Split, embed and index one document; returns its status once indexed."""
    try:
        return await service.ingest(document)
    except DocumentTooLargeError as exc:
        raise ApiError(413, "too_large", str(exc)) from exc


@router.get("/documents/{tenant}/{document_id}")
async def document_status(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)],
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN)],
    service: ServiceDep,
) -> DocumentStatus:
    """The indexing status of one document."""
    status = await service.status(tenant, document_id)
    if status is None:
        raise ApiError(404, "not_found", f"no document {document_id!r} for tenant {tenant!r}")
    return status


@router.delete("/documents/{tenant}/{document_id}")
async def delete_document(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)],
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN)],
    service: ServiceDep,
) -> DocumentDeleted:
    """Remove a document from the index and forget its status."""
    removed = await service.delete(tenant, document_id)
    if removed is None:
        raise ApiError(404, "not_found", f"no document {document_id!r} for tenant {tenant!r}")
    return DocumentDeleted(document_id=document_id, tenant=tenant, chunks_removed=removed)
