"""Ingestion jobs: internal routes invoked through Dapr by the gateway (or any app).

The same contract as `lore_ingest.routes.documents`: an outcome that depends on what was asked (an
unknown job, an invalid body, a tenant that does not match) is HTTP 200 with a `Refusal` body, never
a 4xx that would count against the caller's circuit breaker.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, cast

from fastapi import APIRouter, Path, Request
from prometheus_client import Histogram
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from lore_core.contracts import TENANT_PATTERN, DocumentIn, JobFailure, JobIn, JobList, JobStatus, Refusal
from lore_core.formats import UnreadableDocumentError, UnsupportedFormatError, parse_file
from lore_core.settings import DocumentLimitSettings
from lore_ingest.deps import CallersDep, SettingsDep
from lore_ingest.jobs.workflow import JobRunner
from lore_ingest.routes.documents import RefusingRoute

router = APIRouter(
    route_class=RefusingRoute,
    responses={
        "default": {"description": "A failure (5xx); it counts against the caller's circuit breaker."}
    },
)

PARSE_SECONDS = Histogram(
    "lore_job_file_parse_seconds",
    "Wall time to parse one uploaded file of a job (in a worker thread, waiting for it included).",
)

JOB_ID = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
TENANT = Annotated[str, Path(pattern=TENANT_PATTERN)]


def _runner(request: Request) -> JobRunner:
    return cast(JobRunner, request.app.state.jobs)


def _not_found(tenant: str, job_id: str) -> Refusal:
    return Refusal(error="not_found", detail=f"no job {job_id!r} for tenant {tenant!r}", status=404)


def _invalid(exc: ValidationError) -> Refusal:
    problems = [
        {"field": ".".join(str(p) for p in e.get("loc", ())) or "body", "problem": e.get("msg", "")}
        for e in exc.errors()
    ]
    return Refusal(error="invalid_request", detail=problems, status=422)


async def _files(
    request: Request, limits: DocumentLimitSettings
) -> tuple[str, list[DocumentIn], list[JobFailure]]:
    """The documents of a multipart upload (`files` parts, optional `tenant` and `text_field`);
    a file that cannot be parsed becomes a failure of the job, the others go on."""
    form = await request.form()
    tenant = str(form.get("tenant") or "default")
    text_field = str(form.get("text_field") or "text")
    if not re.fullmatch(TENANT_PATTERN, tenant):
        raise ValueError(f"tenant {tenant[:80]!r} does not match {TENANT_PATTERN}")
    documents: list[DocumentIn] = []
    failures: list[JobFailure] = []
    for part in form.getlist("files"):
        if not isinstance(part, UploadFile):
            continue
        name = part.filename or "upload"
        data = await part.read()
        started = time.perf_counter()
        try:
            # Parsing (PDF, HTML) is CPU work: off the event loop.
            parsed = await asyncio.to_thread(
                parse_file,
                data,
                filename=name,
                content_type=part.content_type,
                tenant=tenant,
                text_field=text_field,
                limits=limits,
            )
        except (UnsupportedFormatError, UnreadableDocumentError) as exc:
            failures.append(JobFailure(source=name, reason=str(exc)))
            continue
        finally:
            PARSE_SECONDS.observe(time.perf_counter() - started)
        documents.extend(parsed)
    return tenant, documents, failures


@router.post("/jobs")
async def create_job(request: Request, settings: SettingsDep, callers: CallersDep) -> JobStatus | Refusal:
    """Start an ingestion job: a JSON `JobIn`, or `multipart/form-data` with `files` parts (and
    optional `tenant`, `text_field` fields). Answers with the job's first status at once; files that
    cannot be parsed are failed items of the job. An invalid body is a 200 `Refusal` (status 422)."""
    runner = _runner(request)
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            try:
                tenant, documents, failures = await _files(request, settings)
            except ValueError as exc:
                return Refusal(error="invalid_request", detail=str(exc), status=422)
            if not documents and not failures:
                return Refusal(error="invalid_request", detail="no `files` part in the upload", status=422)
        else:
            job = JobIn.model_validate_json(await request.body())
            tenant, documents, failures = job.tenant, job.documents, []
    except ValidationError as exc:
        return _invalid(exc)
    if refusal := callers.check(request, tenant):
        return refusal
    # A document over the size limit stays in the job: its batch marks it failed (with its
    # status and `document.failed` event), like any document that cannot be indexed.
    return await runner.submit(tenant, documents, failures)


@router.get("/jobs/{tenant}")
async def list_jobs(tenant: TENANT, request: Request, callers: CallersDep) -> JobList | Refusal:
    """The tenant's jobs, most recent first."""
    if refusal := callers.check(request, tenant):
        return refusal
    return JobList(jobs=await _runner(request).store.recent(tenant))


@router.get("/jobs/{tenant}/{job_id}")
async def job_status(
    tenant: TENANT, job_id: JOB_ID, request: Request, callers: CallersDep
) -> JobStatus | Refusal:
    """A job's state and counts; an unknown job is a 200 `Refusal` (status 404)."""
    if refusal := callers.check(request, tenant):
        return refusal
    status = await _runner(request).store.get(tenant, job_id)
    return _not_found(tenant, job_id) if status is None else status


@router.delete("/jobs/{tenant}/{job_id}")
async def cancel_job(
    tenant: TENANT, job_id: JOB_ID, request: Request, callers: CallersDep
) -> JobStatus | Refusal:
    """Cancel a running job (documents not started stay unindexed; answers its `cancelled` status),
    or purge a job that has ended (answers its last status; it is no longer listed or found)."""
    if refusal := callers.check(request, tenant):
        return refusal
    status = await _runner(request).cancel_or_purge(tenant, job_id)
    return _not_found(tenant, job_id) if status is None else status
