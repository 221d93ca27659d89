"""An ingestion job survives `kill -9` of lore-ingest: the workflow resumes where it stopped.

Its own supervised stack (as under `make run`): the supervisor restarts the killed app, daprd's
workflow engine replays the job's history (kept in the SQLite workflow store) and re-dispatches
the batch that was running. Afterwards every document is indexed exactly once (its manifest was
written once, and the restarted app never embedded a chunk that was indexed before the kill) and
the job's counts are right.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lore_ingest.jobs.store import BATCH_SIZE
from lore_stack.stack import Stack
from tests.conftest import new_stack
from tests.integration.corpus import documents
from tests.integration.helpers import eventually, gateway_client, manifest, metric, statuses
from tests.otlp import OtlpCollector

pytestmark = pytest.mark.integration

DOCUMENTS = 300


@pytest.fixture(scope="module")
def job_stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    lore = new_stack(tmp_path_factory, otlp, name="job-crash-stack")
    lore.supervise = True
    lore.say = lambda line: print(f"[supervisor] {line}")
    try:
        lore.start(timeout=180)
        yield lore
    finally:
        lore.stop()


def _job(stack: Stack, job_id: str, tenant: str) -> dict[str, Any] | None:
    """The job's status; None while lore-ingest or its sidecar is down: the gateway answers 503 both
    when it cannot reach lore-ingest and when lore-ingest's own sidecar (the state store) is gone."""
    with gateway_client(stack, timeout=30) as client:
        response = client.get(f"/v1/jobs/{job_id}", params={"tenant": tenant})
    if response.status_code == 503:
        assert response.json()["error"] == "upstream_unavailable", response.text
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _when(stack: Stack, job_id: str, tenant: str, ready: Any, timeout: float) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        job = _job(stack, job_id, tenant)
        return job if job is not None and ready(job) else None

    return eventually(probe, timeout=timeout, interval=0.5)


def _start_job(stack: Stack, tenant: str) -> tuple[str, list[dict[str, Any]]]:
    """Starts a job of DOCUMENTS documents and waits until a third of them is indexed."""
    docs = documents(7, DOCUMENTS, words=(60, 60))  # one chunk each, so the progress is even
    with gateway_client(stack) as client:
        response = client.post("/v1/jobs", json={"tenant": tenant, "documents": docs})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    _when(stack, job_id, tenant, lambda j: j["counts"]["indexed"] >= DOCUMENTS // 3, timeout=300)
    return job_id, docs


def _assert_finished_once(stack: Stack, job_id: str, tenant: str, docs: list[dict[str, Any]]) -> None:
    done = _when(stack, job_id, tenant, lambda j: j["state"] != "running", timeout=600)
    assert done["state"] == "finished"
    assert done["counts"] == {"queued": 0, "indexed": DOCUMENTS, "unchanged": 0, "failed": 0}
    assert done["failures"] == []
    found = statuses(stack, tenant)
    assert len(found) == DOCUMENTS
    assert {s["state"] for s in found.values()} == {"indexed"}
    writes = {d["id"]: manifest(stack, tenant, d["id"]).get("writes") for d in docs}
    assert set(writes.values()) == {"1"}, [k for k, w in writes.items() if w != "1"][:5]


def test_job_resumes_after_the_ingest_app_is_killed_and_indexes_each_document_once(job_stack: Stack) -> None:
    tenant = "job-crash-app"
    job_id, docs = _start_job(job_stack, tenant)
    assert job_stack.supervisor is not None
    restarts = job_stack.supervisor.restarts["lore-ingest"]

    job_stack.apps["lore-ingest"].app.kill()

    # Dead app: nothing writes any more, so this is exactly what was indexed before the kill.
    indexed_before = [d["id"] for d in docs if manifest(job_stack, tenant, d["id"])]
    assert DOCUMENTS // 3 <= len(indexed_before) < DOCUMENTS, (
        "the job finished before the crash; make it larger"
    )
    _assert_finished_once(job_stack, job_id, tenant, docs)
    assert job_stack.supervisor.restarts["lore-ingest"] == restarts + 1
    # The restarted app embedded only documents that were not indexed before the kill (one chunk each).
    embedded_after = metric(job_stack.url("lore-ingest"), "lore_chunks_embedded_total")
    assert 0 < embedded_after <= DOCUMENTS - len(indexed_before)


def test_job_resumes_after_the_ingest_sidecar_is_killed_and_indexes_each_document_once(
    job_stack: Stack,
) -> None:
    tenant = "job-crash-sidecar"
    ingest = job_stack.url("lore-ingest")
    embedded_before = metric(ingest, "lore_chunks_embedded_total")
    job_id, docs = _start_job(job_stack, tenant)
    assert job_stack.supervisor is not None
    restarts = job_stack.supervisor.restarts["daprd-lore-ingest"]

    job_stack.apps["lore-ingest"].daprd.kill()

    _assert_finished_once(job_stack, job_id, tenant, docs)
    assert job_stack.supervisor.restarts["daprd-lore-ingest"] == restarts + 1
    # The app lived on: its counter covers the whole job. At most the batch that was running when
    # the sidecar died was embedded twice (its index write or status write had failed).
    embedded = metric(ingest, "lore_chunks_embedded_total") - embedded_before
    assert DOCUMENTS <= embedded <= DOCUMENTS + BATCH_SIZE
