"""The public REST API, version 1.

Every request is validated here in full before lore-ingest or lore-query is invoked: body, path
patterns and the document size limit (`max_document_bytes`, shared with lore-ingest), so the
callees see only requests they can serve. The outcomes only a callee can know (a missing document)
come back as a 200 `Refusal`, never as a 4xx that would count against the gateway's circuit breaker
for that callee (see `lore_gateway.services`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from lore_core.contracts import (
    DOCUMENT_ID_PATTERN,
    TENANT_PATTERN,
    Answer,
    AnswerIn,
    DocumentDeleted,
    DocumentIn,
    DocumentStatus,
    Retrieved,
    RetrieveIn,
)
from lore_core.http import ApiError, parse_body
from lore_gateway.deps import LoreDep, SettingsDep

router = APIRouter(prefix="/v1")


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body of a route that reads the raw body itself (to name decoding errors)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _check_size(document: DocumentIn, max_bytes: int) -> None:
    """Refuses a text over lore-ingest's limit with the same 413 lore-ingest would answer."""
    size = len(document.text.encode("utf-8"))
    if size > max_bytes:
        raise ApiError(413, "too_large", f"document text is {size} bytes; the limit is {max_bytes}")


@router.post("/documents", openapi_extra=_json_body(DocumentIn))
async def add_document(
    request: Request,
    response: Response,
    lore: LoreDep,
    settings: SettingsDep,
    wait: Annotated[
        bool, Query(description="Index before answering (true) or enqueue an event (false).")
    ] = True,
) -> DocumentStatus:
    """Add or replace a document; `wait=false` enqueues it as an ingestion event (202)."""
    document = parse_body(await request.body(), DocumentIn, max_bytes=settings.max_body_bytes)
    _check_size(document, settings.max_document_bytes)
    if wait:
        return await lore.ingest(document)
    response.status_code = 202
    return await lore.enqueue(document)


@router.get("/documents/{tenant}/{document_id}")
async def get_document(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)],
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN)],
    lore: LoreDep,
) -> DocumentStatus:
    """The indexing status of one document."""
    return await lore.status(tenant, document_id)


@router.delete("/documents/{tenant}/{document_id}")
async def delete_document(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)],
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN)],
    lore: LoreDep,
) -> DocumentDeleted:
    """Remove a document: its chunks leave the index and its status is forgotten."""
    return await lore.delete(tenant, document_id)


_ANSWER_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "An Answer; with `stream: true` Server-Sent Events: `token` {text} as the answer "
        "is written, `citations` {citations}, `final` (the Answer); `error` {error, detail} when the "
        "model or the stream failed (a degraded `final` follows when lore-query could still answer).",
    }
}


@router.post("/answers", openapi_extra=_json_body(AnswerIn), response_model=Answer, responses=_ANSWER_STREAM)
async def ask(request: Request, lore: LoreDep, settings: SettingsDep) -> Any:
    """Answer a question from the indexed documents, with citations; `stream: true` for SSE."""
    question = parse_body(await request.body(), AnswerIn, max_bytes=settings.max_body_bytes)
    if question.stream:
        events = await lore.answer_stream(question)
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    return await lore.answer(question)


@router.post("/retrieve", openapi_extra=_json_body(RetrieveIn))
async def retrieve(request: Request, lore: LoreDep, settings: SettingsDep) -> Retrieved:
    """The best chunks for a question (no answer), with scores and the retrieval mode used."""
    body = parse_body(await request.body(), RetrieveIn, max_bytes=settings.max_body_bytes)
    return await lore.retrieve(body)
