"""Ingestion jobs as Dapr Workflows: one workflow instance per job, one activity per batch.

The workflow's history (kept by daprd as actor state in the `workflowstore` component, its timers
in the Scheduler) records each finished batch, so after a crash of lore-ingest or its sidecar the
workflow is replayed from that history and goes on with the first batch that has no result: a
job resumes where it stopped. A batch that was running during the crash is run again; that costs
at most a state read per document already done, because `IngestService.ingest` skips versions the
index already holds (status and manifest guards), and the batch's baseline record keeps its counts
right (`JobStore.baseline`).

Activities run on the workflow worker's own event loop (dapr-ext-workflow runs async activities
there, `workflow_runtime.py:_make_activity_wrapper`), while the sidecar client, Redis client and
embedding batcher belong to the app's loop: each activity hands its coroutine to the app's loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Generator
from concurrent.futures import Future
from datetime import timedelta
from typing import Any, TypeVar

from dapr.conf import settings as dapr_settings
from dapr.ext.workflow import (
    DaprWorkflowContext,
    RetryPolicy,
    TaskFailedError,
    WorkflowActivityContext,
    WorkflowRuntime,
)
from dapr.ext.workflow.aio import DaprWorkflowClient

from lore_core.contracts import DocumentIn, DocumentState, JobFailure, JobState, JobStatus
from lore_ingest.jobs.store import (
    BATCH_SIZE,
    MAX_LISTED_FAILURES,
    JobStore,
    indexed_unchanged,
    new_job_id,
)
from lore_ingest.service import DocumentTooLargeError, IngestService, status_key

log = logging.getLogger(__name__)
T = TypeVar("T")

WORKFLOW = "lore_ingest_job"
BATCH_ACTIVITY = "lore_ingest_job_batch"
FINISH_ACTIVITY = "lore_ingest_job_finish"
# A batch's documents (`BATCH_SIZE`) are ingested concurrently, so they share embedding runs in the
# batcher.
# The workflow continues as new after this many batches (a short history to replay; the 300-document
# crash test crosses one such boundary).
CHECKPOINT_BATCHES = 25
# Transient failures (state store, Redis, sidecar restarting) are retried by the workflow engine
# with back-off (1, 2, 4 ... 60 s: about two minutes in all); after that the batch's documents count
# as failed and the job goes on. A crash of the app or its sidecar is not a failed attempt: daprd
# re-dispatches the interrupted activity once the app's worker reconnects.
RETRY = RetryPolicy(
    first_retry_interval=timedelta(seconds=1),
    max_number_of_attempts=8,
    backoff_coefficient=2.0,
    max_retry_interval=timedelta(seconds=60),
)


def instance_id(tenant: str, job_id: str) -> str:
    return f"lore-job-{tenant}-{job_id}"


def job_workflow(ctx: DaprWorkflowContext, job: dict[str, Any]) -> Generator[Any, Any, dict[str, Any] | None]:
    """Runs the batches in order, keeps the counts, stops early when the job is cancelled.

    Deterministic (it is replayed): only its input and the activities' results decide anything.
    Every `CHECKPOINT_BATCHES` batches it continues as a new generation of itself carrying the
    counts, so that its history, replayed at every step, stays short however large the job.
    """
    tenant, job_id, total = job["tenant"], job["job_id"], int(job["documents"])
    before = job.get("before") or {"indexed": 0, "unchanged": 0, "failed": len(job.get("failures", []))}
    failures: list[dict[str, Any]] = list(before.get("failures", job.get("failures", [])))
    indexed, unchanged, failed = int(before["indexed"]), int(before["unchanged"]), int(before["failed"])
    offset = int(job.get("offset", 0))
    cancelled = False
    for n, start in enumerate(range(offset, total, BATCH_SIZE)):
        if n == CHECKPOINT_BATCHES:
            counts = {"indexed": indexed, "unchanged": unchanged, "failed": failed, "failures": failures}
            ctx.continue_as_new({**job, "offset": start, "before": counts})
            return None
        stop = min(start + BATCH_SIZE, total)
        step = {
            "tenant": tenant,
            "job_id": job_id,
            "batch": start // BATCH_SIZE,
            "start": start,
            "stop": stop,
            "before": {"indexed": indexed, "unchanged": unchanged, "failed": failed, "failures": failures},
        }
        try:
            result = yield ctx.call_activity(BATCH_ACTIVITY, input=step, retry_policy=RETRY)
        except TaskFailedError as exc:
            reason = f"gave up after {RETRY.max_number_of_attempts} attempts: {exc}"
            failure = {"document_id": None, "source": f"documents {start}-{stop - 1}", "reason": reason}
            failures = [*failures, failure][:MAX_LISTED_FAILURES]
            failed += stop - start
            continue
        if result["cancelled"]:
            cancelled = True
            break
        indexed += result["indexed"]
        unchanged += result["unchanged"]
        failed += len(result["failures"])
        failures = [*failures, *result["failures"]][:MAX_LISTED_FAILURES]
    final = {
        "tenant": tenant,
        "job_id": job_id,
        "before": {"indexed": indexed, "unchanged": unchanged, "failed": failed, "failures": failures},
    }
    status: dict[str, Any] = yield ctx.call_activity(FINISH_ACTIVITY, input=final, retry_policy=RETRY)
    if cancelled and not ctx.is_replaying:
        log.info("job %s/%s cancelled", tenant, job_id)
    return status


class JobRunner:
    """Owns the workflow runtime (worker) and client of lore-ingest, and the job store.

    Args:
        service: Indexes each document (its exactly-once guards apply to jobs too).
        store: Job records and documents.
        grpc_host, grpc_port: The sidecar's gRPC endpoint (the workflow API is gRPC only).
        api_token: The Dapr API token.
    """

    def __init__(
        self, *, service: IngestService, store: JobStore, grpc_host: str, grpc_port: int, api_token: str
    ) -> None:
        self._service = service
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        # The SDK reads the token from its global settings (Sidecar sets the same value).
        setattr(dapr_settings, "DAPR_API_TOKEN", api_token)  # noqa: B010
        self._runtime = WorkflowRuntime(
            host=grpc_host, port=str(grpc_port), maximum_concurrent_activity_work_items=4
        )

        # Registration marks the function object itself (dapr-ext-workflow sets attributes on it
        # and refuses a second registration), so each runtime registers functions of its own.
        def workflow(
            ctx: DaprWorkflowContext, job: dict[str, Any]
        ) -> Generator[Any, Any, dict[str, Any] | None]:
            return job_workflow(ctx, job)

        async def batch(ctx: WorkflowActivityContext, step: dict[str, Any]) -> dict[str, Any]:
            return await self._on_app_loop(self._run_batch(step))

        async def finish(ctx: WorkflowActivityContext, final: dict[str, Any]) -> dict[str, Any]:
            return await self._on_app_loop(self._finish(final))

        self._runtime.register_workflow(workflow, name=WORKFLOW)
        self._runtime.register_activity(batch, name=BATCH_ACTIVITY)
        self._runtime.register_activity(finish, name=FINISH_ACTIVITY)
        self._client = DaprWorkflowClient(host=grpc_host, port=str(grpc_port))

    @property
    def store(self) -> JobStore:
        return self._store

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Blocks until the worker's stream to daprd is open (the SDK's own readiness wait).
        await asyncio.to_thread(self._runtime.start)

    async def cancel_or_purge(self, tenant: str, job_id: str) -> JobStatus | None:
        """`DELETE` of a job: cancels it while it runs (returns the `cancelled` status), purges it
        once it has ended (returns its last status); None when the job does not exist."""
        current = await self._store.get(tenant, job_id)
        if current is None:
            return None
        if current.state == JobState.RUNNING:
            return await self._store.cancel(tenant, job_id)
        return await self.purge(tenant, job_id)

    async def purge(self, tenant: str, job_id: str) -> JobStatus | None:
        """Deletes a job that has ended and its workflow history; a running job is returned as
        it is, None when the job does not exist."""
        status = await self._store.purge(tenant, job_id)
        if status is None or status.state == JobState.RUNNING:
            return status
        try:
            # The history in the workflow store (dapr-ext-workflow aio/dapr_workflow_client.py:284).
            await self._client.purge_workflow(instance_id(tenant, job_id))
        except Exception as exc:
            # The job is gone either way; a leftover history only takes space. A cancelled job's
            # workflow may still be finishing its last batch (only a terminal instance can be
            # purged): it then finds no record and ends.
            log.warning("job %s/%s: workflow history not purged: %s", tenant, job_id, exc)
        return status

    async def stop(self) -> None:
        await asyncio.to_thread(self._runtime.shutdown)

    async def submit(
        self, tenant: str, documents: list[DocumentIn], failures: list[JobFailure] | None = None
    ) -> JobStatus:
        """Stores the job and schedules its workflow; returns the job's first status (`running`)."""
        job_id = new_job_id()
        failures = failures or []
        status = await self._store.create(tenant, job_id, documents, failures)
        job = {
            "tenant": tenant,
            "job_id": job_id,
            "documents": len(documents),
            "failures": [f.model_dump(mode="json") for f in failures],
        }
        await self._client.schedule_new_workflow(WORKFLOW, input=job, instance_id=instance_id(tenant, job_id))
        log.info(
            "job %s/%s: %d documents, %d unreadable inputs", tenant, job_id, len(documents), len(failures)
        )
        return status

    # Activities: called by the worker on its loop; the work runs on the app's loop.

    async def _on_app_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "JobRunner.start() was not called"
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return await asyncio.wrap_future(future)

    async def _run_batch(self, step: dict[str, Any]) -> dict[str, Any]:
        tenant, job_id, batch = step["tenant"], step["job_id"], int(step["batch"])
        start, stop = int(step["start"]), int(step["stop"])
        current = await self._store.get(tenant, job_id)
        if current is None or current.state != "running":
            return {"cancelled": True, "indexed": 0, "unchanged": 0, "failures": []}
        documents = await self._store.documents(tenant, job_id, start, stop)

        async def already_indexed() -> list[int]:
            keys = [status_key(d.tenant, d.document_id()) for d in documents]
            statuses = await self._store.statuses(keys)
            return [
                start + i
                for i, (d, k) in enumerate(zip(documents, keys, strict=True))
                if indexed_unchanged(statuses.get(k), d)
            ]

        baseline = set(await self._store.baseline(tenant, job_id, batch, already_indexed))
        outcomes = await asyncio.gather(*(self._ingest(d) for d in documents))
        indexed = unchanged = 0
        failures: list[dict[str, Any]] = []
        for n, (document, reason) in enumerate(zip(documents, outcomes, strict=True), start=start):
            if reason is not None:
                failures.append(
                    JobFailure(
                        document_id=document.document_id(), source=document.source, reason=reason
                    ).model_dump(mode="json")
                )
            elif n in baseline:
                unchanged += 1
            else:
                indexed += 1
        before = step["before"]
        await self._store.progress(
            tenant,
            job_id,
            indexed=before["indexed"] + indexed,
            unchanged=before["unchanged"] + unchanged,
            failed=before["failed"] + len(failures),
            failures=[JobFailure.model_validate(f) for f in before["failures"] + failures],
            final=False,
        )
        return {"cancelled": False, "indexed": indexed, "unchanged": unchanged, "failures": failures}

    async def _ingest(self, document: DocumentIn) -> str | None:
        """Indexes one document; returns why it failed, None when it is indexed (or was already).

        Transient errors propagate: the activity fails and the workflow engine retries the batch.
        """
        try:
            status = await self._service.ingest(document)
        except DocumentTooLargeError as exc:
            await self._service.record_failure(document, str(exc))
            return str(exc)
        if status.state == DocumentState.FAILED:
            return status.error or "failed"
        # Indexed, or superseded by a newer version of the same document (which its own
        # submission indexes): either way nothing of this job's version is left to do.
        return None

    async def _finish(self, final: dict[str, Any]) -> dict[str, Any]:
        before = final["before"]
        status = await self._store.progress(
            final["tenant"],
            final["job_id"],
            indexed=before["indexed"],
            unchanged=before["unchanged"],
            failed=before["failed"],
            failures=[JobFailure.model_validate(f) for f in before["failures"]],
            final=True,
        )
        # The job has ended: only its record (and its event, already out) is needed from now on.
        await self._store.retire(final["tenant"], final["job_id"])
        return {} if status is None else status.model_dump(mode="json")
