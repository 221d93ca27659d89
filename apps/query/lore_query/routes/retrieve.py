"""Retrieval without an answer, invoked through Dapr by the gateway or by any other app."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request

from lore_core.contracts import Refusal, Retrieved, RetrievedChunk, RetrieveIn
from lore_core.search import FilterError
from lore_query.deps import CallersDep, RetrievalDep

router = APIRouter()


@router.post("/retrieve")
async def retrieve(
    request: Annotated[RetrieveIn, Body()], retrieval: RetrievalDep, callers: CallersDep, http: Request
) -> Retrieved | Refusal:
    """The tenant's best chunks for a question, with scores and the mode that ranked them.

    Like `/answers`, every valid request is answered 200 (no chunk is an empty list); a body that
    breaks `RetrieveIn` is answered 422: validate before invoking, as the gateway does. Filters on
    metadata the index does not declare (or of the wrong type) can only be judged here, against the
    index schema: a 200 `Refusal` with status 422 and the `{field, problem}` list. Callers: see
    lore_core.callers.
    """
    if refusal := callers.check(http, request.tenant):
        return refusal
    try:
        mode, matches = await retrieval.search(
            question=request.question,
            tenant=request.tenant,
            top_k=request.top_k,
            mode=request.mode,
            min_score=request.min_score,
            mmr=request.mmr,
            filters=request.filters,
        )
    except FilterError as exc:
        problems = [{"field": field, "problem": problem} for field, problem in exc.problems]
        return Refusal(error="invalid_request", detail=problems, status=422)
    chunks = [
        RetrievedChunk(
            document_id=m.document_id,
            title=m.title,
            source=m.source,
            chunk=m.chunk,
            text=m.text,
            score=m.score,
            similarity=m.similarity,
            page=m.page,
            section=m.section,
        )
        for m in matches
    ]
    return Retrieved(mode=mode.value, chunks=chunks)
