"""Ingestion jobs: many documents or files indexed in the background, followed by id.

lore-ingest runs each job as a Dapr Workflow; these routes validate, scope the tenant to the
caller's key and call lore-ingest's `jobs` routes through `lore_gateway.services.Lore`. Multipart
uploads are checked here (the `files` parts, the `tenant` field) and forwarded byte for byte with
their content type; the files themselves are parsed by lore-ingest, where a file that cannot be
read is one failed item of the job, not a refusal of the whole upload. lore-ingest answers what it
refuses with a 200 `Refusal` (see `lore_gateway.services`), turned into the real 4xx here.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile

from lore_core.contracts import TENANT_PATTERN, JobIn, JobList, JobStatus
from lore_core.formats import ACCEPTED_TYPES
from lore_core.http import ApiError, parse_body, validate
from lore_gateway.auth import Principal, PrincipalDep, Role
from lore_gateway.deps import LoreDep, SettingsDep
from lore_gateway.errors import errors, link

router = APIRouter(prefix="/v1")

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
TenantQuery = Annotated[
    str | None,
    Query(pattern=TENANT_PATTERN, description="The tenant (default: the API key's, or `default`)."),
]

_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": JobIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": f"Files to index; accepted types: {', '.join(ACCEPTED_TYPES)}.",
                        },
                        "tenant": {"type": "string", "pattern": TENANT_PATTERN},
                        "text_field": {
                            "type": "string",
                            "description": "JSON / JSONL: the field of each record holding its text.",
                        },
                    },
                }
            },
        },
    }
}


def _job_id(job_id: str, tenant: str) -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise ApiError(404, "not_found", f"no job {job_id[:80]!r} for tenant {tenant!r}")
    return job_id


async def _multipart(request: Request, raw: bytes, principal: Principal) -> tuple[bytes, str, str]:
    """Checks an upload (files present, tenant allowed) and returns the body to forward, with the
    tenant field filled in when the key implies it, its content type and the tenant."""
    form = await request.form()
    files = [p for p in form.getlist("files") if isinstance(p, UploadFile) and p.filename]
    if not files:
        raise ApiError(422, "invalid_request", [{"field": "files", "problem": "upload at least one file"}])
    requested = form.get("tenant")
    if requested is not None and (
        not isinstance(requested, str) or not re.fullmatch(TENANT_PATTERN, requested)
    ):
        raise ApiError(
            422, "invalid_request", [{"field": "tenant", "problem": f"must match {TENANT_PATTERN}"}]
        )
    tenant = principal.scope(requested if isinstance(requested, str) else None)
    if requested == tenant:
        return raw, request.headers["content-type"], tenant
    # Re-encode with the tenant the key implies (the files pass unchanged).
    data = {k: str(v) for k, v in form.multi_items() if not isinstance(v, UploadFile) and k != "tenant"}
    data["tenant"] = tenant
    parts = [("files", (f.filename or "upload", await f.read(), f.content_type or "")) for f in files]
    encoded = httpx.Request("POST", "http://lore", data=data, files=parts)
    return encoded.read(), encoded.headers["content-type"], tenant


_JOB = "/v1/jobs/{job_id}"
_JOB_LINKS = {
    "GetJob": link(_JOB, "get", "The job's progress.", job_id="$response.body#/job_id"),
    "CancelJob": link(_JOB, "delete", "Cancel the job.", job_id="$response.body#/job_id"),
}


@router.post(
    "/jobs",
    status_code=202,
    openapi_extra=_CREATE_BODY,
    responses={202: {"links": _JOB_LINKS}, **errors(400, 403, 413, 422, 502, 503)},
)
async def create_job(
    request: Request, settings: SettingsDep, principal: PrincipalDep, lore: LoreDep
) -> JobStatus:
    """Start an ingestion job (JSON documents, or multipart `files`); answers 202 with its id at once."""
    principal.require(Role.WRITER)
    raw = await request.body()
    if len(raw) > settings.max_body_bytes:
        raise ApiError(413, "too_large", f"body is {len(raw)} bytes; the limit is {settings.max_body_bytes}")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        content, content_type, tenant = await _multipart(request, raw, principal)
        return await lore.submit_job_files(content, content_type=content_type, tenant=tenant)
    job = parse_body(raw, JobIn, max_bytes=settings.max_body_bytes)
    tenant = principal.scope(job.tenant if "tenant" in job.model_fields_set else None)
    if tenant != job.tenant:
        job = validate({**json.loads(raw), "tenant": tenant}, JobIn)
    return await lore.submit_job(job)


@router.get("/jobs", responses=errors(403, 422, 502, 503))
async def list_jobs(principal: PrincipalDep, lore: LoreDep, tenant: TenantQuery = None) -> JobList:
    """The tenant's ingestion jobs, most recent first (a job that ended is kept for a while)."""
    principal.require(Role.READER)
    return await lore.jobs(principal.scope(tenant))


@router.get("/jobs/{job_id}", responses=errors(403, 404, 422, 502, 503))
async def get_job(
    job_id: str, principal: PrincipalDep, lore: LoreDep, tenant: TenantQuery = None
) -> JobStatus:
    """A job's state, counts (queued, indexed, unchanged, failed) and failures with reasons."""
    principal.require(Role.READER)
    scoped = principal.scope(tenant)
    return await lore.job(scoped, _job_id(job_id, scoped))


@router.delete("/jobs/{job_id}", responses=errors(403, 404, 422, 502, 503))
async def cancel_job(
    job_id: str, principal: PrincipalDep, lore: LoreDep, tenant: TenantQuery = None
) -> JobStatus:
    """Cancel a running job (documents not yet started are left out), or delete a job that has
    ended (it is no longer listed; its documents stay indexed). Returns the job's status."""
    principal.require(Role.WRITER)
    scoped = principal.scope(tenant)
    return await lore.delete_job(scoped, _job_id(job_id, scoped))
