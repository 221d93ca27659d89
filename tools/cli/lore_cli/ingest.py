"""`lore ingest`: upload files as ingestion jobs in batches, then follow the jobs to their end.

Every problem is counted per file and the rest goes on: a path that names nothing, a file that
cannot be read, a batch the gateway refuses (all its files, with the gateway's detail) and the
documents the jobs report as failed. An unreachable gateway, or an error that is not about the files
(401, 403, 429, 5xx), stops the command; jobs already submitted go on (`lore jobs`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.progress import Progress, TaskID

from lore_cli.client import Gateway, GatewayError, GatewayUnreachable
from lore_cli.paths import Expansion, batches

MISSING = "no such file, directory or matching pattern"
COUNTS = ("indexed", "unchanged", "failed", "queued")
# Refusals of an upload that are about its files (too large, a type or body the gateway cannot take):
# those files fail and the next batch goes on. Any other error (no or a wrong API key, a tenant the
# key may not use, a rate limit, an unavailable service) would refuse every batch alike: it stops.
FILE_REFUSALS = frozenset({400, 413, 415, 422})
# Polls of a running job that may fail in a row (a gateway restarting) before the command gives up.
MAX_POLL_ERRORS = 20


def failure(source: str, reason: str, document_id: str | None = None) -> dict[str, Any]:
    """A failure in the shape of a job's `failures` items."""
    return {"document_id": document_id, "source": source, "reason": reason}


@dataclass
class IngestResult:
    """What `lore ingest` did: the jobs' last status and the failures found before any job."""

    tenant: str | None
    files: int
    jobs: list[dict[str, Any]] = field(default_factory=list)
    local_failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(COUNTS, 0)
        for job in self.jobs:
            for name in COUNTS:
                counts[name] += int(job.get("counts", {}).get(name, 0))
        counts["failed"] += len(self.local_failures)
        return counts

    @property
    def failures(self) -> list[dict[str, Any]]:
        return self.local_failures + [f for job in self.jobs for f in job.get("failures", [])]

    @property
    def cancelled(self) -> list[str]:
        return [job["job_id"] for job in self.jobs if job.get("state") == "cancelled"]

    @property
    def ok(self) -> bool:
        """Every document indexed or unchanged, nothing left running or cancelled."""
        counts = self.counts
        return not (self.interrupted or self.cancelled or counts["failed"] or counts["queued"])

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "ok": self.ok,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "counts": self.counts,
            "failures": self.failures,
            "jobs": self.jobs,
        }


def run(
    gateway: Gateway,
    found: Expansion,
    *,
    tenant: str | None,
    text_field: str | None = None,
    max_files: int = 100,
    max_bytes: int = 3_000_000,
    wait: bool = True,
    progress: Progress | None = None,
    poll_interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> IngestResult:
    """Uploads `found` as jobs of at most `max_files` files / `max_bytes` bytes and follows them.

    Raises:
        GatewayUnreachable: the gateway could not be reached (jobs already submitted go on).
        GatewayError: the gateway refused an upload for a reason other than its files.
    """
    started = time.monotonic()
    result = IngestResult(tenant=tenant, files=len(found.uploads))
    result.local_failures = [failure(path, MISSING) for path in found.missing]
    jobs: dict[str, dict[str, Any]] = {}
    uploading = progress.add_task("uploading", total=len(found.uploads), unit="files") if progress else None
    for batch in batches(found.uploads, max_files=max_files, max_bytes=max_bytes):
        files: list[tuple[str, bytes]] = []
        for upload in batch:
            try:
                files.append((upload.name, upload.path.read_bytes()))
            except OSError as exc:
                reason = f"cannot read the file: {exc.strerror or exc}"
                result.local_failures.append(failure(upload.name, reason))
        if files:
            try:
                job = gateway.submit_job(tenant, files, text_field)
            except GatewayError as exc:
                if exc.status not in FILE_REFUSALS:
                    raise
                result.local_failures.extend(failure(name, exc.message) for name, _ in files)
            else:
                jobs[job["job_id"]] = job
        if progress and uploading is not None:
            progress.advance(uploading, len(batch))
    try:
        if wait:
            _follow(gateway, tenant, jobs, progress, poll_interval, sleep)
    except KeyboardInterrupt:
        result.interrupted = True
    result.jobs = list(jobs.values())
    if result.jobs:  # the tenant the gateway chose when none was named
        result.tenant = result.jobs[0].get("tenant", tenant)
    result.seconds = time.monotonic() - started
    return result


def _follow(
    gateway: Gateway,
    tenant: str | None,
    jobs: dict[str, dict[str, Any]],
    progress: Progress | None,
    poll_interval: float,
    sleep: Callable[[float], None],
) -> None:
    """Polls the running jobs until none is left running, updating the `indexing` bar."""
    indexing = progress.add_task("indexing", total=None, unit="docs") if progress else None
    errors = 0
    while True:
        if progress and indexing is not None:
            _show(progress, indexing, jobs)
        running = [job_id for job_id, job in jobs.items() if job.get("state") == "running"]
        if not running:
            return
        sleep(poll_interval)
        for job_id in running:
            try:
                jobs[job_id] = gateway.job(tenant, job_id)
                errors = 0
            except (GatewayUnreachable, GatewayError) as exc:
                if isinstance(exc, GatewayError) and exc.status < 500:
                    raise
                errors += 1
                if errors > MAX_POLL_ERRORS:
                    raise


def _show(progress: Progress, task: TaskID, jobs: dict[str, dict[str, Any]]) -> None:
    total = sum(int(job.get("total", 0)) for job in jobs.values())
    outcomes = ("indexed", "unchanged", "failed")
    done = sum(int(job.get("counts", {}).get(name, 0)) for job in jobs.values() for name in outcomes)
    progress.update(task, total=total, completed=done)
