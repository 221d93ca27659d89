"""Ingestion jobs (`/v1/jobs`) on Dapr Workflow, and the completion events on `lore.events`.

Runs on the shared stack: real daprd sidecars with Placement, Scheduler and the SQLite workflow
store, real Redis. Completion events are read from the Redis stream of `lore.events` (the
`pubsub` component is Redis Streams: one stream per topic, the CloudEvent in field `data`), as
any consumer in any language would see them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, cast

import httpx
import pytest

from lore_core.contracts import DocumentEvent, DocumentIn, JobEvent, JobStatus
from lore_core.dapr import EtagMismatchError, Sidecar, StateOp
from lore_ingest.jobs.store import JobStore, new_job_id
from lore_stack.stack import Stack
from tests.integration.helpers import TOPICS, eventually, manifest, redis_of, statuses

pytestmark = pytest.mark.integration


def _documents(tenant: str, count: int, prefix: str = "doc") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{n:03d}",
            "title": f"Note {n}",
            "source": f"notes/{prefix}-{n}.txt",
            "text": f"Note number {n} of tenant {tenant}: the archive of region {n % 7} is rotated weekly.",
        }
        for n in range(count)
    ]


def _finished(gateway: httpx.Client, job_id: str, tenant: str, timeout: float = 180) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = gateway.get(f"/v1/jobs/{job_id}", params={"tenant": tenant})
        assert response.status_code == 200, response.text
        body = cast(dict[str, Any], response.json())
        return body if body["state"] != "running" else None

    return eventually(probe, timeout=timeout, interval=0.5)


def _events(stack: Stack) -> list[dict[str, Any]]:
    """Every CloudEvent on the `lore.events` stream so far."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_of(stack).xrange(TOPICS.events_topic))
    return [json.loads(fields[b"data"]) for _, fields in entries if b"data" in fields]


def test_job_of_documents_indexes_them_all_and_counts_unchanged_ones(
    gateway: httpx.Client, stack: Stack
) -> None:
    tenant = f"job-{uuid.uuid4().hex[:8]}"
    docs = _documents(tenant, 20)
    # Two documents are indexed before the job: the job finds them unchanged.
    for doc in docs[:2]:
        assert gateway.post("/v1/documents", json={**doc, "tenant": tenant}).status_code == 200

    response = gateway.post("/v1/jobs", json={"tenant": tenant, "documents": docs})

    assert response.status_code == 202, response.text
    started = JobStatus.model_validate(response.json())
    assert (started.state, started.total, started.counts.queued) == ("running", 20, 20)
    job = _finished(gateway, started.job_id, tenant)
    assert job["state"] == "finished"
    assert job["counts"] == {"queued": 0, "indexed": 18, "unchanged": 2, "failed": 0}
    assert job["failures"] == []
    found = statuses(stack, tenant)
    assert sorted(found) == sorted(d["id"] for d in docs)
    assert {s["state"] for s in found.values()} == {"indexed"}
    assert {manifest(stack, tenant, d["id"])["writes"] for d in docs} == {"1"}
    listed = gateway.get("/v1/jobs", params={"tenant": tenant}).json()["jobs"]
    assert [j["job_id"] for j in listed] == [started.job_id]


def test_bad_items_fail_with_reasons_while_the_rest_is_indexed(gateway: httpx.Client, stack: Stack) -> None:
    tenant = f"job-{uuid.uuid4().hex[:8]}"
    good = _documents(tenant, 3)
    too_large = {"id": "huge", "source": "huge.txt", "text": "word " * 110_000}  # 550 KB > 512 KB

    response = gateway.post("/v1/jobs", json={"tenant": tenant, "documents": [*good, too_large]})

    assert response.status_code == 202, response.text
    job = _finished(gateway, response.json()["job_id"], tenant)
    assert job["counts"] == {"queued": 0, "indexed": 3, "unchanged": 0, "failed": 1}
    assert [(f["document_id"], f["source"]) for f in job["failures"]] == [("huge", "huge.txt")]
    assert "limit" in job["failures"][0]["reason"]
    found = statuses(stack, tenant)
    assert {k: v["state"] for k, v in found.items()} == {
        **{d["id"]: "indexed" for d in good},
        "huge": "failed",
    }


def test_uploaded_files_that_cannot_be_parsed_are_failed_items(gateway: httpx.Client, stack: Stack) -> None:
    tenant = f"job-{uuid.uuid4().hex[:8]}"
    files = [
        ("files", ("guide.md", b"# Guide\n\nRotate the archive keys every week.\n", "text/markdown")),
        ("files", ("notes.txt", b"Backups run at midnight in every region.", "text/plain")),
        ("files", ("broken.pdf", b"%PDF-1.7 this is not a PDF at all", "application/pdf")),
        ("files", ("empty.txt", b"", "text/plain")),
        ("files", ("tool.exe", b"MZ\x90\x00", "application/octet-stream")),
    ]

    response = gateway.post("/v1/jobs", data={"tenant": tenant}, files=files)

    assert response.status_code == 202, response.text
    job = _finished(gateway, response.json()["job_id"], tenant)
    assert job["counts"] == {"queued": 0, "indexed": 2, "unchanged": 0, "failed": 3}
    reasons = {f["source"]: f["reason"] for f in job["failures"]}
    assert sorted(reasons) == ["broken.pdf", "empty.txt", "tool.exe"]
    assert "accepted types" in reasons["tool.exe"]
    assert [s["state"] for s in statuses(stack, tenant).values()] == ["indexed", "indexed"]


def test_upload_without_tenant_field_goes_to_the_default_tenant(gateway: httpx.Client, stack: Stack) -> None:
    name = f"note-{uuid.uuid4().hex[:8]}.txt"
    files = [("files", (name, b"The default tenant keeps its notes here.", "text/plain"))]

    response = gateway.post("/v1/jobs", files=files)

    assert response.status_code == 202, response.text
    job = _finished(gateway, response.json()["job_id"], "default")
    assert (job["tenant"], job["counts"]["indexed"]) == ("default", 1)


def test_unknown_job_is_404_json(gateway: httpx.Client) -> None:
    for job_id in (uuid.uuid4().hex, "not-a-job-id"):
        response = gateway.get(f"/v1/jobs/{job_id}", params={"tenant": "default"})
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert job_id in response.json()["detail"]
        assert gateway.delete(f"/v1/jobs/{job_id}").status_code == 404


def test_invalid_job_body_is_422_naming_the_field(gateway: httpx.Client) -> None:
    response = gateway.post("/v1/jobs", json={"tenant": "default", "documents": [{"text": "  "}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"].startswith("documents.0")
    assert gateway.post("/v1/jobs", json={"documents": []}).status_code == 422


def test_cancelled_job_stops_before_its_remaining_documents(gateway: httpx.Client, stack: Stack) -> None:
    tenant = f"job-{uuid.uuid4().hex[:8]}"
    response = gateway.post("/v1/jobs", json={"tenant": tenant, "documents": _documents(tenant, 200)})
    job_id = response.json()["job_id"]

    cancelled = gateway.delete(f"/v1/jobs/{job_id}", params={"tenant": tenant})

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    # The workflow notices before its next batch and records its last counts with the event.
    finished = eventually(
        lambda: next(
            (e for e in _events(stack) if e["type"] == "job.finished" and e["data"]["job_id"] == job_id), None
        ),
        timeout=60,
    )
    job = gateway.get(f"/v1/jobs/{job_id}", params={"tenant": tenant}).json()
    assert job["state"] == finished["data"]["state"] == "cancelled"
    counts = job["counts"]
    assert counts["queued"] > 0
    assert counts["indexed"] + counts["unchanged"] + counts["failed"] + counts["queued"] == 200
    assert len(statuses(stack, tenant)) == counts["indexed"] < 200


def test_completion_events_announce_indexed_documents_and_the_finished_job(
    gateway: httpx.Client, stack: Stack
) -> None:
    tenant = f"job-{uuid.uuid4().hex[:8]}"
    docs = _documents(tenant, 5)
    response = gateway.post("/v1/jobs", json={"tenant": tenant, "documents": docs})
    job_id = response.json()["job_id"]
    _finished(gateway, job_id, tenant)

    def delivered() -> tuple[list[DocumentEvent], JobEvent] | None:
        events = _events(stack)
        indexed = [
            DocumentEvent.model_validate(e)
            for e in events
            if e["type"] == "document.indexed" and e["data"]["tenant"] == tenant
        ]
        done = [JobEvent.model_validate(e) for e in events if e["type"] == "job.finished"]
        job = next((j for j in done if j.data.job_id == job_id), None)
        return (indexed, job) if job is not None and len({e.data.document_id for e in indexed}) == 5 else None

    indexed, job = eventually(delivered, timeout=60)
    assert {e.data.document_id for e in indexed} == {d["id"] for d in docs}
    assert {e.source for e in indexed} == {"lore-ingest"}
    revisions = {d["id"]: DocumentIn(**d, tenant=tenant).revision() for d in docs}
    assert all(e.data.revision == revisions[e.data.document_id] for e in indexed)
    assert job.data.state == "finished"
    assert job.data.counts.indexed == 5

    # A delete publishes `document.deleted` (the tombstone is written in a transaction too).
    assert gateway.delete(f"/v1/documents/{tenant}/{docs[0]['id']}").status_code == 200
    deleted = eventually(
        lambda: next(
            (
                e
                for e in _events(stack)
                if e["type"] == "document.deleted"
                and e["data"]["tenant"] == tenant
                and e["data"]["document_id"] == docs[0]["id"]
            ),
            None,
        ),
        timeout=30,
    )
    assert DocumentEvent.model_validate(deleted).data.state == "deleted"


def test_failed_document_publishes_document_failed(gateway: httpx.Client, stack: Stack) -> None:
    tenant = f"job-{uuid.uuid4().hex[:8]}"
    response = gateway.post(
        "/v1/jobs", json={"tenant": tenant, "documents": [{"id": "big", "text": "word " * 110_000}]}
    )
    _finished(gateway, response.json()["job_id"], tenant)
    failed = eventually(
        lambda: next(
            (e for e in _events(stack) if e["type"] == "document.failed" and e["data"]["tenant"] == tenant),
            None,
        ),
        timeout=30,
    )
    event = DocumentEvent.model_validate(failed)
    assert (event.data.document_id, event.data.state) == ("big", "failed")
    assert "limit" in (event.data.error or "")


async def test_state_transaction_publishes_its_item_with_the_type_and_refuses_a_stale_etag(
    stack: Stack,
) -> None:
    ingest = stack.apps["lore-ingest"]
    client = Sidecar(
        ingest.http, stack.secrets["dapr-api-token"], grpc_address=f"127.0.0.1:{ingest.spec.dapr_grpc_port}"
    )
    key = f"test:{uuid.uuid4().hex}"
    marker = uuid.uuid4().hex
    try:
        await client.save_state("statestore", key, {"n": 1})
        _, etag = await client.get_state("statestore", key)
        op = StateOp(
            key=key, value={"n": 2, "marker": marker}, etag=etag, metadata={"type": "test.event"}, event=True
        )
        await client.transact("statestore", [op])
        assert (await client.get_state("statestore", key))[0] == {"n": 2, "marker": marker}
        with pytest.raises(EtagMismatchError):
            await client.transact("statestore", [StateOp(key=key, value={"n": 3}, etag=etag)])
        assert (await client.get_state("statestore", key))[0] == {"n": 2, "marker": marker}
    finally:
        await client.delete_state("statestore", key)
        await client.aclose()
    event = eventually(
        lambda: next(
            (
                e
                for e in _events(stack)
                if isinstance(e.get("data"), dict) and e["data"].get("marker") == marker
            ),
            None,
        ),
        timeout=30,
    )
    # The data is the JSON object (the projection's content type), the type the operation's metadata.
    assert (event["type"], event["data"], event["source"]) == (
        "test.event",
        {"n": 2, "marker": marker},
        "lore-ingest",
    )


def _ingest_sidecar(stack: Stack) -> Sidecar:
    ingest = stack.apps["lore-ingest"]
    return Sidecar(
        ingest.http, stack.secrets["dapr-api-token"], grpc_address=f"127.0.0.1:{ingest.spec.dapr_grpc_port}"
    )


def _job_keys(stack: Stack, tenant: str, job_id: str) -> list[bytes]:
    """The job's keys in Redis (record, documents, batch records), as lore-ingest's store names them."""
    return sorted(cast(list[bytes], redis_of(stack).keys(f"lore-ingest||job:{tenant}:{job_id}*")))


async def test_an_empty_etag_creates_a_state_item_only_when_it_is_absent(stack: Stack) -> None:
    """What the job list's first write relies on (state.redis, first-write concurrency)."""
    client = _ingest_sidecar(stack)
    key = f"test:{uuid.uuid4().hex}"
    try:
        await client.save_state("statestore", key, ["first"], etag="")
        with pytest.raises(EtagMismatchError):
            await client.save_state("statestore", key, ["second"], etag="")
        value, etag = await client.get_state("statestore", key)
        assert value == ["first"]
        await client.save_state("statestore", key, ["first", "third"], etag=etag)
        assert (await client.get_state("statestore", key))[0] == ["first", "third"]
    finally:
        await client.delete_state("statestore", key)
        await client.aclose()


async def test_concurrent_first_jobs_of_a_new_tenant_are_all_listed(
    gateway: httpx.Client, stack: Stack
) -> None:
    tenant = f"job-{uuid.uuid4().hex[:8]}"
    client = _ingest_sidecar(stack)
    # lore-ingest's own job store on its real sidecar; jobs without documents (and no workflow)
    # reach the tenant's not-yet-existing job list all at the same moment.
    store = JobStore(client, "statestore", retention_seconds=600)
    try:
        created = await asyncio.gather(*(store.create(tenant, new_job_id(), [], []) for _ in range(8)))
    finally:
        await client.aclose()

    response = await asyncio.to_thread(gateway.get, "/v1/jobs", params={"tenant": tenant})
    assert sorted(j["job_id"] for j in response.json()["jobs"]) == sorted(c.job_id for c in created)


def test_a_job_that_ended_keeps_only_its_record_and_that_expires(gateway: httpx.Client, stack: Stack) -> None:
    tenant = f"job-{uuid.uuid4().hex[:8]}"
    response = gateway.post("/v1/jobs", json={"tenant": tenant, "documents": _documents(tenant, 12)})
    job_id = response.json()["job_id"]
    record = f"lore-ingest||job:{tenant}:{job_id}".encode()
    _finished(gateway, job_id, tenant)

    # Its 12 documents and 2 batch records are deleted as the job ends, its record gets a TTL.
    eventually(lambda: _job_keys(stack, tenant, job_id) == [record] or None, timeout=30)
    ttl = redis_of(stack).ttl(record)
    assert 7 * 24 * 3600 - 300 < ttl <= 7 * 24 * 3600  # JOB_RETENTION_SECONDS' default

    # Once the record has expired, the job is no longer found, nor listed, nor in the list key.
    redis_of(stack).pexpire(record, 1)
    eventually(lambda: not redis_of(stack).exists(record), timeout=10)
    assert gateway.get(f"/v1/jobs/{job_id}", params={"tenant": tenant}).status_code == 404
    assert gateway.get("/v1/jobs", params={"tenant": tenant}).json()["jobs"] == []
    listed = json.loads(cast(bytes, redis_of(stack).hget(f"lore-ingest||jobs:{tenant}", "data")))
    assert listed == []


def test_deleting_a_job_that_ended_purges_it(gateway: httpx.Client, stack: Stack) -> None:
    tenant = f"job-{uuid.uuid4().hex[:8]}"
    first, second = (
        gateway.post("/v1/jobs", json={"tenant": tenant, "documents": _documents(tenant, 3, p)}).json()
        for p in ("a", "b")
    )
    first, second = first["job_id"], second["job_id"]
    for job_id in (first, second):
        _finished(gateway, job_id, tenant)

    purged = gateway.delete(f"/v1/jobs/{first}", params={"tenant": tenant})

    assert purged.status_code == 200, purged.text
    assert (purged.json()["job_id"], purged.json()["state"]) == (first, "finished")
    assert gateway.get(f"/v1/jobs/{first}", params={"tenant": tenant}).status_code == 404
    listed = gateway.get("/v1/jobs", params={"tenant": tenant}).json()["jobs"]
    assert [j["job_id"] for j in listed] == [second]
    assert _job_keys(stack, tenant, first) == []
    assert gateway.delete(f"/v1/jobs/{first}", params={"tenant": tenant}).status_code == 404
    # The documents the job indexed stay indexed: purging a job forgets the job, not its work.
    assert len(statuses(stack, tenant)) == 6
