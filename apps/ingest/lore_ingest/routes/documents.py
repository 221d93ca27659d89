"""Synchronous and queued ingestion, status and deletion: internal routes, invoked through Dapr
by the gateway or by any other app.

Contract for every caller: Dapr counts each invocation answer outside 200-399 as a failure, and a
caller's circuit breaker opens after a few of them for that method path, refusing every request of
that caller until it closes. So these routes never answer non-2xx for an outcome that depends on
what was asked. A document that is not known, a text over the size limit, an invalid body or path
are answered HTTP 200 with a `Refusal` body, `{"outcome": "refused", "error", "detail", "status"}`,
where `status` is the HTTP status the caller's own API should answer with; a success body never
has an `outcome` field. Only real failures (5xx: state store, Redis or embedding trouble) count
against the breaker, which is what it is for.

Only trusted callers may use these routes, and the `lore-tenant` header, when sent, must name the
tenant of the body or path (lore_core.callers).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from lore_core.contracts import (
    DOCUMENT_ID_PATTERN,
    TENANT_PATTERN,
    DocumentDeleted,
    DocumentIn,
    DocumentStatus,
    Refusal,
)
from lore_ingest.deps import CallersDep, ServiceDep
from lore_ingest.service import DocumentTooLargeError


class RefusingRoute(APIRoute):
    """A route whose invalid requests (body or path) are answered as a 200 `Refusal`, not a 422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                # The `{field, problem}` list of the public API's `invalid_request` (lore_core.http).
                problems = [
                    {
                        "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body",
                        "problem": e.get("msg", ""),
                    }
                    for e in exc.errors()
                ]
                refusal = Refusal(error="invalid_request", detail=problems, status=422)
                return JSONResponse(refusal.model_dump(mode="json"))

        return route


router = APIRouter(
    route_class=RefusingRoute,
    # Replaces FastAPI's generic 422 entry, which these routes never answer.
    responses={
        "default": {"description": "A failure (5xx); it counts against the caller's circuit breaker."}
    },
)


def _not_found(tenant: str, document_id: str) -> Refusal:
    return Refusal(error="not_found", detail=f"no document {document_id!r} for tenant {tenant!r}", status=404)


@router.post("/documents")
async def ingest_document(
    document: Annotated[DocumentIn, Body()], service: ServiceDep, callers: CallersDep, request: Request
) -> DocumentStatus | Refusal:
    """Split, embed and index one document; returns its status once indexed.

    A text over the size limit (`MAX_DOCUMENT_BYTES`) or an invalid body is a 200 `Refusal`
    (status 413, 422); see the module docstring.
    """
    if refusal := callers.check(request, document.tenant):
        return refusal
    try:
        # The caller is waiting: embed ahead of queued event traffic.
        return await service.ingest(document, interactive=True)
    except DocumentTooLargeError as exc:
        return Refusal(error="too_large", detail=str(exc), status=413)


@router.post("/documents/queue")
async def queue_document(
    document: Annotated[DocumentIn, Body()], service: ServiceDep, callers: CallersDep, request: Request
) -> DocumentStatus | Refusal:
    """Accept a document for asynchronous indexing: its status is `accepted` before this returns,
    then the ingestion event is published. A version already indexed or queued is not queued again
    (its current status is returned). Over the size limit: a 200 `Refusal` (status 413)."""
    if refusal := callers.check(request, document.tenant):
        return refusal
    try:
        return await service.enqueue(document)
    except DocumentTooLargeError as exc:
        return Refusal(error="too_large", detail=str(exc), status=413)


@router.get("/documents/{tenant}/{document_id}")
async def document_status(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)],
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN)],
    service: ServiceDep,
    callers: CallersDep,
    request: Request,
) -> DocumentStatus | Refusal:
    """The indexing status of one document; an unknown document is a 200 `Refusal` (status 404)."""
    if refusal := callers.check(request, tenant):
        return refusal
    status = await service.status(tenant, document_id)
    return _not_found(tenant, document_id) if status is None else status


@router.delete("/documents/{tenant}/{document_id}")
async def delete_document(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)],
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN)],
    service: ServiceDep,
    callers: CallersDep,
    request: Request,
) -> DocumentDeleted | Refusal:
    """Remove a document from the index and forget its status; an unknown document is a 200
    `Refusal` (status 404)."""
    if refusal := callers.check(request, tenant):
        return refusal
    removed = await service.delete(tenant, document_id)
    if removed is None:
        return _not_found(tenant, document_id)
    return DocumentDeleted(document_id=document_id, tenant=tenant, chunks_removed=removed)
