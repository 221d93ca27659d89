"""Retrieval without an answer, invoked through Dapr by the gateway or by any other app."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from lore_core.contracts import Retrieved, RetrievedChunk, RetrieveIn
from lore_query.deps import RetrievalDep

router = APIRouter()


@router.post("/retrieve")
async def retrieve(request: Annotated[RetrieveIn, Body()], retrieval: RetrievalDep) -> Retrieved:
    """The tenant's best chunks for a question, with scores and the mode that ranked them.

    Like `/answers`, every valid request is answered 200 (no chunk is an empty list); a body that
    breaks `RetrieveIn` is answered 422: validate before invoking, as the gateway does.
    """
    mode, matches = await retrieval.search(
        question=request.question,
        tenant=request.tenant,
        top_k=request.top_k,
        mode=request.mode,
        min_score=request.min_score,
        mmr=request.mmr,
    )
    chunks = [
        RetrievedChunk(
            document_id=m.document_id,
            title=m.title,
            source=m.source,
            chunk=m.chunk,
            text=m.text,
            score=m.score,
            similarity=m.similarity,
        )
        for m in matches
    ]
    return Retrieved(mode=mode.value, chunks=chunks)
