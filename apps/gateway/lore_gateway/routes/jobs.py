"""Ingestion jobs: many documents or files indexed in the background, followed by id.

lore-ingest runs each job as a Dapr Workflow; these routes validate, scope the tenant to the
caller's key and invoke lore-ingest's `jobs` routes. Multipart uploads are checked here (the
`files` parts, the `tenant` field) and forwarded byte for byte with their content type; the files
themselves are parsed by lore-ingest, where a file that cannot be read is one failed item of the
job, not a refusal of the whole upload. lore-ingest answers what it refuses with a 200 `Refusal`
(see `lore_gateway.services`), turned into the real 4xx here.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile

from lore_core.contracts import TENANT_PATTERN, JobIn, JobList, JobStatus
from lore_core.dapr import DaprError, Sidecar
from lore_core.formats import ACCEPTED_TYPES
from lore_core.http import ApiError, parse_body, validate
from lore_gateway.auth import Principal, PrincipalDep, Role
from lore_gateway.deps import SettingsDep
from lore_gateway.services import _upstream

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


async def _invoke(request: Request, method: str, *, http_method: str = "GET", **kwargs: Any) -> Any:
    sidecar: Sidecar = request.app.state.sidecar
    app_id: str = request.app.state.settings.ingest_app_id
    try:
        response = await sidecar.invoke(app_id, method, http_method=http_method, **kwargs)
    except DaprError as exc:
        raise ApiError(503, "upstream_unavailable", f"{app_id} is unavailable: {exc}") from exc
    return _upstream(response, app_id)


def _job_id(job_id: str, tenant: str) -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise ApiError(404, "not_found", f"no job {job_id[:80]!r} for tenant {tenant!r}")
    return job_id


async def _multipart(request: Request, raw: bytes, principal: Principal) -> tuple[bytes, str]:
    """Checks an upload (files present, tenant allowed) and returns the body to forward, with the
    tenant field filled in when the key implies it."""
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
        return raw, request.headers["content-type"]
    # Re-encode with the tenant the key implies (the files pass unchanged).
    data = {k: str(v) for k, v in form.multi_items() if not isinstance(v, UploadFile) and k != "tenant"}
    data["tenant"] = tenant
    parts = [("files", (f.filename or "upload", await f.read(), f.content_type or "")) for f in files]
    encoded = httpx.Request("POST", "http://lore", data=data, files=parts)
    return encoded.read(), encoded.headers["content-type"]


@router.post("/jobs", status_code=202, openapi_extra=_CREATE_BODY)
async def create_job(request: Request, settings: SettingsDep, principal: PrincipalDep) -> JobStatus:
    """Start an ingestion job (JSON documents, or multipart `files`); answers 202 with its id at once."""
    principal.require(Role.WRITER)
    raw = await request.body()
    if len(raw) > settings.max_body_bytes:
        raise ApiError(413, "too_large", f"body is {len(raw)} bytes; the limit is {settings.max_body_bytes}")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        content, content_type = await _multipart(request, raw, principal)
        body = await _invoke(
            request, "jobs", http_method="POST", content=content, headers={"content-type": content_type}
        )
        return JobStatus.model_validate(body)
    job = parse_body(raw, JobIn, max_bytes=settings.max_body_bytes)
    tenant = principal.scope(job.tenant if "tenant" in job.model_fields_set else None)
    if tenant != job.tenant:
        job = validate({**json.loads(raw), "tenant": tenant}, JobIn)
    body = await _invoke(request, "jobs", http_method="POST", json_body=job.model_dump(mode="json"))
    return JobStatus.model_validate(body)


@router.get("/jobs")
async def list_jobs(request: Request, principal: PrincipalDep, tenant: TenantQuery = None) -> JobList:
    """The tenant's ingestion jobs, most recent first."""
    principal.require(Role.READER)
    return JobList.model_validate(await _invoke(request, f"jobs/{principal.scope(tenant)}"))


@router.get("/jobs/{job_id}")
async def get_job(
    job_id: str, request: Request, principal: PrincipalDep, tenant: TenantQuery = None
) -> JobStatus:
    """A job's state, counts (queued, indexed, unchanged, failed) and failures with reasons."""
    principal.require(Role.READER)
    scoped = principal.scope(tenant)
    return JobStatus.model_validate(await _invoke(request, f"jobs/{scoped}/{_job_id(job_id, scoped)}"))


@router.delete("/jobs/{job_id}")
async def cancel_job(
    job_id: str, request: Request, principal: PrincipalDep, tenant: TenantQuery = None
) -> JobStatus:
    """Cancel a job: documents not yet started are left out. Returns the job's status."""
    principal.require(Role.WRITER)
    scoped = principal.scope(tenant)
    body = await _invoke(request, f"jobs/{scoped}/{_job_id(job_id, scoped)}", http_method="DELETE")
    return JobStatus.model_validate(body)
