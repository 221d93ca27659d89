"""The public REST API, version 1.

Every request is validated here in full before lore-ingest or lore-query is invoked: body, path
patterns and the document size limit (`max_document_bytes`, shared with lore-ingest), so the
callees see only requests they can serve. The outcomes only a callee can know (a missing document)
come back as a 200 `Refusal`, never as a 4xx that would count against the gateway's circuit breaker
for that callee (see `lore_gateway.services`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from lore_core.contracts import (
    DOCUMENT_ID_PATTERN,
    MAX_HISTORY_MESSAGES,
    TENANT_PATTERN,
    Answer,
    AnswerIn,
    ChatCompletionIn,
    DocumentDeleted,
    DocumentIn,
    DocumentStatus,
    Retrieved,
    RetrieveIn,
)
from lore_core.http import ApiError, parse_body, validate
from lore_gateway.auth import Principal, PrincipalDep, Role
from lore_gateway.deps import LoreDep, SettingsDep
from lore_gateway.errors import errors, link

router = APIRouter(prefix="/v1")
T = TypeVar("T", bound=BaseModel)


def _scoped(body: T, principal: Principal, role: Role) -> T:
    """``body`` acting on the caller's tenant: a body naming another tenant is refused (403), a body
    naming none takes the key's."""
    principal.require(role)
    requested = getattr(body, "tenant", None) if "tenant" in body.model_fields_set else None
    return body.model_copy(update={"tenant": principal.scope(requested)})


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI request body of a route that reads the raw body itself (to name decoding errors)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _check_size(document: DocumentIn, max_bytes: int) -> None:
    """Refuses a text over lore-ingest's limit with the same 413 lore-ingest would answer."""
    size = len(document.text.encode("utf-8"))
    if size > max_bytes:
        raise ApiError(413, "too_large", f"document text is {size} bytes; the limit is {max_bytes}")


_DOCUMENT = "/v1/documents/{tenant}/{document_id}"
_DOCUMENT_LINKS = {
    "links": {
        "GetDocument": link(
            _DOCUMENT,
            "get",
            "The document's indexing status.",
            tenant="$response.body#/tenant",
            document_id="$response.body#/document_id",
        ),
        "DeleteDocument": link(
            _DOCUMENT,
            "delete",
            "Remove the document.",
            tenant="$response.body#/tenant",
            document_id="$response.body#/document_id",
        ),
    }
}


@router.post(
    "/documents",
    openapi_extra=_json_body(DocumentIn),
    responses={
        200: _DOCUMENT_LINKS,
        202: {"model": DocumentStatus, "description": "Accepted (`wait=false`)", **_DOCUMENT_LINKS},
        **errors(400, 403, 413, 422, 502, 503),
    },
)
async def add_document(
    request: Request,
    response: Response,
    lore: LoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    wait: Annotated[
        bool, Query(description="Index before answering (true) or enqueue an event (false).")
    ] = True,
) -> DocumentStatus:
    """Add or replace a document; `wait=false` enqueues it as an ingestion event (202)."""
    document = parse_body(await request.body(), DocumentIn, max_bytes=settings.max_body_bytes)
    document = _scoped(document, principal, Role.WRITER)
    _check_size(document, settings.max_document_bytes)
    if wait:
        return await lore.ingest(document)
    response.status_code = 202
    return await lore.enqueue(document)


@router.get("/documents/{tenant}/{document_id}", responses=errors(403, 404, 422, 502, 503))
async def get_document(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)],
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN)],
    lore: LoreDep,
    principal: PrincipalDep,
) -> DocumentStatus:
    """The indexing status of one document."""
    principal.require(Role.READER)
    return await lore.status(principal.scope(tenant), document_id)


@router.delete("/documents/{tenant}/{document_id}", responses=errors(403, 404, 422, 502, 503))
async def delete_document(
    tenant: Annotated[str, Path(pattern=TENANT_PATTERN)],
    document_id: Annotated[str, Path(pattern=DOCUMENT_ID_PATTERN)],
    lore: LoreDep,
    principal: PrincipalDep,
) -> DocumentDeleted:
    """Remove a document: its chunks leave the index and its status is forgotten."""
    principal.require(Role.WRITER)
    return await lore.delete(principal.scope(tenant), document_id)


_ANSWER_STREAM: dict[int | str, dict[str, Any]] = {
    **errors(400, 403, 413, 422, 502, 503),
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "An Answer; with `stream: true` Server-Sent Events: `token` {text} as the answer "
        "is written, `citations` {citations}, `final` (the Answer); `error` {error, detail} when the "
        "model or the stream failed (a degraded `final` follows when lore-query could still answer).",
    },
}


@router.post("/answers", openapi_extra=_json_body(AnswerIn), response_model=Answer, responses=_ANSWER_STREAM)
async def ask(request: Request, lore: LoreDep, settings: SettingsDep, principal: PrincipalDep) -> Any:
    """Answer a question from the indexed documents, with citations; `stream: true` for SSE."""
    question = parse_body(await request.body(), AnswerIn, max_bytes=settings.max_body_bytes)
    question = _scoped(question, principal, Role.READER)
    if question.stream:
        events = await lore.answer_stream(question)
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    return await lore.answer(question)


@router.post(
    "/retrieve",
    openapi_extra=_json_body(RetrieveIn),
    responses=errors(400, 403, 413, 422, 502, 503),
)
async def retrieve(
    request: Request, lore: LoreDep, settings: SettingsDep, principal: PrincipalDep
) -> Retrieved:
    """The best chunks for a question (no answer), with scores and the retrieval mode used."""
    body = parse_body(await request.body(), RetrieveIn, max_bytes=settings.max_body_bytes)
    body = _scoped(body, principal, Role.READER)
    return await lore.retrieve(body)


# OpenAI-compatible answers: the official openai SDKs work against Lore unchanged. The one model is
# Lore itself; the question is the last user message, made standalone with the earlier user and
# assistant messages (the newest `MAX_HISTORY_MESSAGES`); citations
# travel in the extension field `lore` of the completion (and of the last chunk when streamed).
# Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`.
LORE_MODEL = "lore"
_ROLES = frozenset({"system", "developer", "user", "assistant"})


def _openai_error(status: int, code: str, message: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "api_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _chat_question(chat: ChatCompletionIn, principal: Principal) -> AnswerIn:
    """The last user message as Lore's question; raises `ApiError` for what Lore cannot serve."""
    principal.require(Role.READER)
    requested = chat.lore.tenant if "tenant" in chat.lore.model_fields_set else None
    tenant = principal.scope(requested)
    if chat.model != LORE_MODEL:
        raise ApiError(404, "model_not_found", f"the model `{chat.model}` does not exist; use `{LORE_MODEL}`")
    for message in chat.messages:
        if message.role not in _ROLES:
            raise ApiError(400, "unsupported_role", f"messages with role `{message.role}` are not supported")
    users = [n for n, m in enumerate(chat.messages) if m.role == "user"]
    if not users or not isinstance(chat.messages[users[-1]].content, str):
        raise ApiError(400, "unsupported_content", "the last user message must have text content")
    # Earlier user and assistant messages are the conversation that makes a follow-up standalone
    # (system and developer messages are instructions; Lore keeps its own).
    earlier = [
        {"role": m.role, "content": m.content}
        for m in chat.messages[: users[-1]]
        if m.role in ("user", "assistant") and isinstance(m.content, str)
    ][-MAX_HISTORY_MESSAGES:]
    return validate(
        {
            "question": chat.messages[users[-1]].content,
            **chat.lore.model_dump(exclude_none=True),
            "tenant": tenant,
            "stream": chat.stream,
            "history": earlier,
        },
        AnswerIn,
    )


def _chunk(ident: str, delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
    body = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": LORE_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


async def _chat_chunks(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Lore's answer events as OpenAI `chat.completion.chunk`s, ending with `data: [DONE]`.

    A stream Lore could not finish ends with an OpenAI error event instead of `[DONE]` (the openai
    SDK raises on it), never with a silent end.
    """
    ident = f"chatcmpl-{uuid.uuid4().hex}"
    yield _chunk(ident, {"role": "assistant", "content": ""}, None)
    citations: list[Any] = []
    async for block in events:
        name, _, data = block.decode().partition("\ndata: ")
        payload = json.loads(data)
        if name == "event: token":
            yield _chunk(ident, {"content": payload["text"]}, None)
        elif name == "event: citations":
            citations = payload["citations"]
        elif name == "event: final":
            lore = {k: payload[k] for k in ("mode", "degraded", "reason")} | {"citations": citations}
            yield _chunk(ident, {}, "stop", lore=lore)
            yield b"data: [DONE]\n\n"
            return
        elif name == "event: error" and payload.get("error") == "upstream_cut":
            error = {"message": payload.get("detail"), "type": "api_error", "code": "upstream_cut"}
            yield f"data: {json.dumps({'error': error})}\n\n".encode()
            return


@router.get("/models")
async def models() -> dict[str, Any]:
    """OpenAI-compatible list of models: Lore answers as the one model `lore`."""
    return {
        "object": "list",
        "data": [{"id": LORE_MODEL, "object": "model", "created": 0, "owned_by": "lore"}],
    }


@router.post(
    "/chat/completions",
    openapi_extra=_json_body(ChatCompletionIn),
    response_model=None,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "A `chat.completion`; with `stream: true` Server-Sent Events of "
            "`chat.completion.chunk`s ending with `data: [DONE]` (or an OpenAI error event).",
        },
        **errors(
            400, 403, 404, 413, 422, 502, 503, chat=True, s404="`model_not_found`: the model is not `lore`."
        ),
    },
)
async def chat_completions(
    request: Request, lore: LoreDep, settings: SettingsDep, principal: PrincipalDep
) -> Any:
    """OpenAI-compatible answer (streamed with `stream: true`); citations in the extension field `lore`."""
    try:
        chat = parse_body(await request.body(), ChatCompletionIn, max_bytes=settings.max_body_bytes)
        question = _chat_question(chat, principal)
        if question.stream:
            events = await lore.answer_stream(question)
            return StreamingResponse(
                _chat_chunks(events), media_type="text/event-stream", headers={"cache-control": "no-cache"}
            )
        answer = await lore.answer(question)
    except ApiError as exc:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return _openai_error(exc.status_code, exc.code, detail)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": LORE_MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "lore": answer.model_dump(mode="json", include={"citations", "mode", "degraded", "reason"}),
    }
