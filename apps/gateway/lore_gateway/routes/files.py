"""`POST /v1/files`: upload files (text, Markdown, HTML, PDF, JSON, JSONL) to index them.

The body goes to lore-ingest's `files` route as is (multipart bytes with their content type); what
only a parser can tell (an unsupported type, a corrupt or oversized file) comes back as a 200
`Refusal`, which `lore_gateway.services` turns into the public 415, 422 or 413.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from lore_core.contracts import TENANT_PATTERN, FilesIngested
from lore_core.formats import ACCEPTED_TYPES, UPLOAD_OPENAPI
from lore_core.http import ApiError
from lore_gateway.auth import PrincipalDep, Role
from lore_gateway.deps import LoreDep, SettingsDep
from lore_gateway.errors import errors

router = APIRouter(prefix="/v1")

_ERRORS: dict[int | str, dict[str, Any]] = errors(
    403,
    413,
    415,
    422,
    502,
    503,
    s413="`too_large`: the body, or a document of a file, is over the limit.",
    s415=f"`unsupported_format`: accepted types are {', '.join(ACCEPTED_TYPES)}.",
    s422="`unreadable_document` (empty, corrupt, binary, no text; the detail names the "
    "file and, for JSONL, the line) or `invalid_request`.",
)


@router.post("/files", openapi_extra=UPLOAD_OPENAPI, responses=_ERRORS)
async def upload_files(
    request: Request,
    lore: LoreDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    tenant: Annotated[str | None, Query(pattern=TENANT_PATTERN)] = None,
    text_field: Annotated[
        str, Query(min_length=1, max_length=200, description="Field holding the text of JSON/JSONL records.")
    ] = "text",
    filename: Annotated[
        str | None, Query(min_length=1, max_length=1000, description="Name of the file sent as a raw body.")
    ] = None,
) -> FilesIngested:
    """Index uploaded files (multipart `file` parts, or one raw body named by `filename`); nothing is
    indexed unless every file can be read."""
    principal.require(Role.WRITER)
    content_type = request.headers.get("content-type", "")
    is_multipart = content_type.startswith("multipart/form-data")
    if not is_multipart and filename is None:
        raise ApiError(
            422,
            "invalid_request",
            "send multipart/form-data with `file` parts, or a raw body with `filename` in the query",
        )
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        raise ApiError(413, "too_large", f"body is {len(body)} bytes; the limit is {settings.max_body_bytes}")
    if not body:
        raise ApiError(422, "unreadable_document", "the request body is empty")
    params = {"text_field": text_field}
    if filename is not None and not is_multipart:
        params["filename"] = filename
    return await lore.ingest_files(
        body, content_type=content_type, tenant=principal.scope(tenant), params=params
    )
