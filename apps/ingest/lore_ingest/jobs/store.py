"""Ingestion jobs in the Dapr state store: the job record, its documents, its per-batch baselines.

Keys (prefixed with the app-id by Dapr):

* `job:{tenant}:{job_id}`: the `JobStatus` shown by `GET /v1/jobs/{job_id}`;
* `job:{tenant}:{job_id}:doc:{n}`: the n-th document of the job (written once, before the
  workflow starts; the workflow's history then carries only indexes, never texts);
* `job:{tenant}:{job_id}:batch:{b}`: which documents of batch b were already indexed, unchanged,
  before the job first touched them, so that a batch retried after a crash counts its documents
  the same way as the first attempt would have;
* `jobs:{tenant}`: the tenant's job ids, most recent first (the `GET /v1/jobs` listing).

Retention: once a job has ended (finished or cancelled) its documents and batch records are
deleted (they only serve to resume it) and its record expires `retention_seconds` later (Dapr's
`ttlInSeconds`); ids of expired jobs leave the listing the next time it is read. `purge` removes a
job that has ended at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from lore_core.contracts import (
    DocumentIn,
    DocumentState,
    DocumentStatus,
    JobCounts,
    JobFailure,
    JobState,
    JobStatus,
)
from lore_core.dapr import EtagMismatchError, Sidecar, StateOp

# A job record lists at most this many failures (the counts stay exact).
MAX_LISTED_FAILURES = 1000
# `GET /v1/jobs` lists at most this many of a tenant's most recent jobs.
MAX_LISTED_JOBS = 200
# Documents are saved in bulk calls of at most this many JSON bytes, well below the 4 MB daprd
# accepts per gRPC message by default (`--max-body-size`).
_BULK_BYTES = 2_000_000
_ATTEMPTS = 16
# A job's documents are indexed this many at a time (one workflow activity, one batch record each).
BATCH_SIZE = 8
# Keys deleted per state transaction when a job's inputs are purged.
_DELETES_PER_CALL = 200


def job_key(tenant: str, job_id: str) -> str:
    return f"job:{tenant}:{job_id}"


def document_key(tenant: str, job_id: str, n: int) -> str:
    return f"job:{tenant}:{job_id}:doc:{n}"


def batch_key(tenant: str, job_id: str, batch: int) -> str:
    return f"job:{tenant}:{job_id}:batch:{batch}"


def jobs_key(tenant: str) -> str:
    return f"jobs:{tenant}"


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    """Reads and writes jobs; every change of a job record is a compare-and-set on its ETag."""

    def __init__(self, sidecar: Sidecar, statestore: str, *, retention_seconds: int) -> None:
        """``retention_seconds``: how long the record of a job that has ended stays; 0 keeps it."""
        self._sidecar = sidecar
        self._store = statestore
        self._retention = retention_seconds

    async def create(
        self, tenant: str, job_id: str, documents: Sequence[DocumentIn], failures: Sequence[JobFailure]
    ) -> JobStatus:
        """Saves the documents, then the job record (`running`), then lists the job.

        ``failures`` are inputs that never became documents (files that could not be parsed);
        they count as failed from the start.
        """
        batch: dict[str, Any] = {}
        size = 0
        for n, document in enumerate(documents):
            value = document.model_dump(mode="json")
            batch[document_key(tenant, job_id, n)] = value
            size += len(json.dumps(value))
            if size > _BULK_BYTES:
                await self._sidecar.save_bulk_state(self._store, batch)
                batch, size = {}, 0
        if batch:
            await self._sidecar.save_bulk_state(self._store, batch)
        status = JobStatus(
            job_id=job_id,
            tenant=tenant,
            state=JobState.RUNNING,
            total=len(documents) + len(failures),
            counts=JobCounts(queued=len(documents), failed=len(failures)),
            failures=list(failures)[:MAX_LISTED_FAILURES],
        )
        await self._sidecar.save_state(self._store, job_key(tenant, job_id), status.model_dump(mode="json"))
        await self._update_list(
            tenant, lambda ids: [job_id, *[i for i in ids if i != job_id]][:MAX_LISTED_JOBS]
        )
        return status

    async def get(self, tenant: str, job_id: str) -> JobStatus | None:
        value, _ = await self._sidecar.get_state(self._store, job_key(tenant, job_id))
        return None if value is None else JobStatus.model_validate(value)

    async def recent(self, tenant: str) -> list[JobStatus]:
        """The tenant's listed jobs; ids whose record is gone (expired) are taken off the list.

        A listed id always had its record first (`create` saves the record, then lists it), so a
        missing record means an expired or purged job, never one still being created.
        """
        ids, _ = await self._sidecar.get_state(self._store, jobs_key(tenant))
        keys = {i: job_key(tenant, i) for i in ids or []}
        values = await self._sidecar.get_bulk_state(self._store, list(keys.values()))
        gone = {i for i, k in keys.items() if k not in values}
        if gone:
            await self._update_list(tenant, lambda current: [i for i in current if i not in gone])
        return [JobStatus.model_validate(values[k]) for k in keys.values() if k in values]

    async def documents(self, tenant: str, job_id: str, start: int, stop: int) -> list[DocumentIn]:
        keys = [document_key(tenant, job_id, n) for n in range(start, stop)]
        values = await self._sidecar.get_bulk_state(self._store, keys)
        missing = [k for k in keys if k not in values]
        if missing:
            raise LookupError(f"job {job_id}: documents missing from the state store: {missing[:3]}")
        return [DocumentIn.model_validate(values[k]) for k in keys]

    async def statuses(self, keys: Sequence[str]) -> dict[str, DocumentStatus]:
        values = await self._sidecar.get_bulk_state(self._store, keys)
        return {k: DocumentStatus.model_validate(v) for k, v in values.items()}

    async def baseline(self, tenant: str, job_id: str, batch: int, decide: Callable[[], Any]) -> list[int]:
        """The batch's documents that were indexed and unchanged before the job touched them: read
        from the batch record, or decided by ``decide`` (awaitable) and recorded on first call."""
        key = batch_key(tenant, job_id, batch)
        value, _ = await self._sidecar.get_state(self._store, key)
        if value is not None:
            return [int(n) for n in value["unchanged"]]
        unchanged: list[int] = await decide()
        await self._sidecar.save_state(self._store, key, {"unchanged": unchanged})
        return unchanged

    async def cancel(self, tenant: str, job_id: str) -> JobStatus | None:
        """Marks a running job `cancelled`; the workflow stops before its next batch. A finished or
        cancelled job is returned as it is; None when the job does not exist."""

        def decide(current: JobStatus) -> JobStatus | None:
            if current.state != JobState.RUNNING:
                return None
            return current.model_copy(update={"state": JobState.CANCELLED, "updated_at": datetime.now(UTC)})

        return await self._transition(tenant, job_id, decide)

    async def progress(
        self,
        tenant: str,
        job_id: str,
        *,
        indexed: int,
        unchanged: int,
        failures: Sequence[JobFailure],
        failed: int,
        final: bool,
    ) -> JobStatus | None:
        """Writes the job's counts. A cancelled job stays cancelled. The final write is a state
        transaction whose item the state store's outbox publishes as the `job.finished` event
        (see components/statestore.yaml), so the event goes out if and only if the record says
        the job is over."""

        def decide(current: JobStatus) -> JobStatus | None:
            if current.state == JobState.FINISHED:
                return None
            # Documents without an outcome: none once a job ran to its end, the rest when cancelled.
            queued = max(current.total - indexed - unchanged - failed, 0)
            state = current.state if current.state == JobState.CANCELLED or not final else JobState.FINISHED
            return current.model_copy(
                update={
                    "state": state,
                    "counts": JobCounts(queued=queued, indexed=indexed, unchanged=unchanged, failed=failed),
                    "failures": list(failures)[:MAX_LISTED_FAILURES],
                    "updated_at": datetime.now(UTC),
                }
            )

        return await self._transition(tenant, job_id, decide, event="job.finished" if final else None)

    async def retire(self, tenant: str, job_id: str) -> None:
        """After the job has ended: deletes its documents and batch records and lets its record
        expire `retention_seconds` from now. Idempotent (the finishing activity may run again)."""
        key = job_key(tenant, job_id)
        for _ in range(_ATTEMPTS):
            value, etag = await self._sidecar.get_state(self._store, key)
            if value is None:
                return
            await self._delete_inputs(tenant, job_id, JobStatus.model_validate(value).total)
            if self._retention <= 0:
                return
            try:
                # The same value again, now with a TTL: state.redis EXPIREs the key after the write
                # (components-contrib v1.18.0 state/redis/redis.go:373-378).
                await self._sidecar.save_state(
                    self._store, key, value, etag=etag, ttl_seconds=self._retention
                )
            except EtagMismatchError:
                continue
            return
        raise EtagMismatchError(f"{key} kept changing during {_ATTEMPTS} attempts")

    async def purge(self, tenant: str, job_id: str) -> JobStatus | None:
        """Deletes a job that has ended (record, inputs, list entry); returns its last status.

        A running job is left alone and returned as it is (cancel it first); None when the job
        does not exist.
        """
        current = await self.get(tenant, job_id)
        if current is None or current.state == JobState.RUNNING:
            return current
        await self._delete_inputs(tenant, job_id, current.total)
        await self._sidecar.delete_state(self._store, job_key(tenant, job_id))
        await self._update_list(tenant, lambda ids: [i for i in ids if i != job_id])
        return current

    async def _delete_inputs(self, tenant: str, job_id: str, total: int) -> None:
        """Deletes the documents and batch records of a job of ``total`` items (a bound: inputs
        that never became documents have no key; deleting a missing key is a no-op)."""
        keys = [document_key(tenant, job_id, n) for n in range(total)]
        keys += [batch_key(tenant, job_id, b) for b in range(-(-total // BATCH_SIZE))]
        for start in range(0, len(keys), _DELETES_PER_CALL):
            # Deletes in a transaction publish nothing on the outbox (daprd v1.18.1
            # pkg/runtime/pubsub/outbox.go:168-170: only set requests become events).
            ops = [StateOp(key=k, delete=True) for k in keys[start : start + _DELETES_PER_CALL]]
            await self._sidecar.transact(self._store, ops)

    async def _transition(
        self,
        tenant: str,
        job_id: str,
        decide: Callable[[JobStatus], JobStatus | None],
        *,
        event: str | None = None,
    ) -> JobStatus | None:
        key = job_key(tenant, job_id)
        for _ in range(_ATTEMPTS):
            value, etag = await self._sidecar.get_state(self._store, key)
            if value is None:
                return None
            current = JobStatus.model_validate(value)
            new = decide(current)
            if new is None:
                return current
            try:
                data = new.model_dump(mode="json")
                if event is None:
                    await self._sidecar.save_state(self._store, key, data, etag=etag)
                else:
                    op = StateOp(key=key, value=data, etag=etag, metadata={"type": event}, event=True)
                    await self._sidecar.transact(self._store, [op])
            except EtagMismatchError:
                continue
            return new
        raise EtagMismatchError(f"{key} kept changing during {_ATTEMPTS} attempts")

    async def _update_list(self, tenant: str, change: Callable[[list[str]], list[str]]) -> None:
        """Read-modify-write of the tenant's job list, compare-and-set on its ETag.

        The list's first write must be conditional too: a write without an ETag is
        last-write-wins, so two first jobs of a tenant that both read "no list" would each write a
        list of one and the second would erase the first. An empty ETag with first-write
        concurrency means "only if absent" in state.redis: the version compared is 0
        (components-contrib v1.18.0 state/redis/redis.go:535-537), and the set script accepts
        version 0 only for a missing key or one never written with first-write (redis.go:40-52);
        every write here is first-write, so a list created by a concurrent job makes it fail.
        """
        key = jobs_key(tenant)
        for _ in range(_ATTEMPTS):
            value, etag = await self._sidecar.get_state(self._store, key)
            try:
                await self._sidecar.save_state(self._store, key, change(list(value or [])), etag=etag or "")
            except EtagMismatchError:
                continue
            return
        raise EtagMismatchError(f"{key} kept changing during {_ATTEMPTS} attempts")


def indexed_unchanged(status: DocumentStatus | None, document: DocumentIn) -> bool:
    """True when the document's current status already holds this version, indexed."""
    return (
        status is not None
        and status.state == DocumentState.INDEXED
        and status.revision == document.revision()
    )
