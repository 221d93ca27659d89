"""The `lore` command, run as its installed entry point against the session stack's gateway:
real jobs through Dapr Workflow, real answers streamed as Server-Sent Events, real errors.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lore_stack.stack import Stack, free_port
from tests.integration.helpers import gateway_auth, gateway_client

pytestmark = pytest.mark.integration

LORE = Path(sys.executable).with_name("lore")
TENANT = "cli"
RETENTION = {
    "id": "cli-retention",
    "tenant": TENANT,
    "title": "Data retention",
    "source": "handbook/retention.md",
    "text": "Deleted files are kept in the recycle bin for 30 days. After 30 days they are purged.",
}
QUESTION = "How long are deleted files kept in the recycle bin?"


@dataclass(frozen=True)
class Gateway:
    url: str
    key: str  # an admin key of tenant `cli`, sent by the CLI from `LORE_API_KEY`


@pytest.fixture(scope="module")
def cli_gateway(stack: Stack) -> Iterator[Gateway]:
    with gateway_client(stack) as client:
        response = client.post("/v1/documents", json=RETENTION)
        assert response.status_code == 200, response.text
    yield Gateway(stack.url("lore-gateway"), gateway_auth(stack).key(TENANT))


def lore(
    gateway: Gateway, *args: str, cwd: Path | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Runs `lore ARGS...` with the gateway and key in `LORE_URL` / `LORE_API_KEY`, as a shell would."""
    env = {**os.environ, "LORE_URL": gateway.url, "LORE_API_KEY": gateway.key, "NO_COLOR": "1"}
    env["COLUMNS"] = "200"
    env.pop("LORE_TENANT", None)
    return subprocess.run(
        [str(LORE), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def plain(text: str) -> str:
    """Table output as words: rich's box drawing and padding dropped."""
    return re.sub(r"\s+", " ", re.sub(r"[\u2500-\u257f]", " ", text)).strip()


def parsed(run: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(run.stdout)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A small folder of Markdown, text and JSONL files (4 files, 5 documents)."""
    folder = tmp_path / "docs"
    (folder / "guides").mkdir(parents=True)
    (folder / "billing.md").write_text(
        "# Billing\n\nInvoices are sent on the first day of each month.\n\n"
        "## Refunds\n\nRefunds are paid back within 14 days.\n"
    )
    (folder / "guides" / "sharing.md").write_text("# Sharing\n\nShared links expire after 7 days.\n")
    (folder / "office.txt").write_text("The office is open from 8 to 18 on weekdays.\n")
    records = [
        {"body": "The support line answers within two hours.", "title": "Support", "team": "care"},
        {"body": "Passwords must be rotated every 90 days.", "title": "Passwords", "team": "security"},
    ]
    (folder / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # not a parseable type: not collected
    return folder


def test_ingest_of_a_folder_indexes_every_document_and_a_second_run_finds_them_unchanged(
    cli_gateway: Gateway, docs: Path
) -> None:
    ingest = ["ingest", "docs", "--tenant", TENANT, "--text-field", "body"]
    first = lore(cli_gateway, *ingest, "--json", cwd=docs.parent)
    assert first.returncode == 0, first.stderr
    report = parsed(first)
    assert report["ok"] is True and report["files"] == 4
    assert report["counts"] == {"indexed": 5, "unchanged": 0, "failed": 0, "queued": 0}
    [job] = report["jobs"]
    assert job["state"] == "finished" and job["total"] == 5 and job["tenant"] == TENANT

    again = lore(cli_gateway, *ingest, cwd=docs.parent)
    assert again.returncode == 0, again.stderr
    assert "4 files, 5 documents" in again.stdout
    assert "outcome documents indexed 0 unchanged 5 failed 0" in plain(again.stdout)

    listed = lore(cli_gateway, "jobs", "--tenant", TENANT, "--json")
    assert listed.returncode == 0, listed.stderr
    ids = [j["job_id"] for j in parsed(listed)["jobs"]]
    assert job["job_id"] in ids
    shown = lore(cli_gateway, "jobs", job["job_id"], "--tenant", TENANT)
    assert shown.returncode == 0 and job["job_id"] in shown.stdout and "finished" in shown.stdout


def test_failed_files_and_missing_paths_are_reported_with_reasons_and_exit_1(
    cli_gateway: Gateway, docs: Path
) -> None:
    (docs / "empty.txt").write_bytes(b"")
    (docs / "broken.jsonl").write_text('{"text": "fine"}\nnot json\n')
    args = ["ingest", "docs", "nowhere", "docs/*.pdf", "--tenant", TENANT, "--json"]
    run = lore(cli_gateway, *args, cwd=docs.parent)
    assert run.returncode == 1, run.stderr
    report = parsed(run)
    failures = {f["source"]: f["reason"] for f in report["failures"]}
    # Without `--text-field body` the records of faq.jsonl have no text: a failure too.
    expected = {"nowhere", "docs/*.pdf", "docs/empty.txt", "docs/broken.jsonl", "docs/faq.jsonl"}
    assert set(failures) == expected
    assert "line 2 is not JSON" in failures["docs/broken.jsonl"]
    assert "no text in the field 'text'" in failures["docs/faq.jsonl"]
    assert "no such file" in failures["nowhere"]
    # The other files still went in.
    assert report["counts"]["indexed"] + report["counts"]["unchanged"] == 3
    assert "no such file, directory or matching pattern: nowhere" in run.stderr


def test_ask_streams_the_answer_then_the_citations(cli_gateway: Gateway) -> None:
    run = lore(cli_gateway, "ask", QUESTION, "--tenant", TENANT)
    assert run.returncode == 0, run.stderr
    answer, citations = run.stdout.split("Citations:\n")
    assert "30 days" in answer
    assert citations.startswith("  [1] Data retention (handbook/retention.md, chunk 0, score 0.")

    unstreamed = lore(cli_gateway, "ask", QUESTION, "--tenant", TENANT, "--no-stream")
    assert unstreamed.returncode == 0, unstreamed.stderr
    assert unstreamed.stdout == run.stdout

    as_json = parsed(lore(cli_gateway, "ask", QUESTION, "--tenant", TENANT, "--json"))
    assert as_json["answer"] == answer.strip()
    assert [c["document_id"] for c in as_json["citations"]] == ["cli-retention"]


def test_status_then_delete_then_status_is_not_found(cli_gateway: Gateway) -> None:
    document = {**RETENTION, "id": "cli-doomed", "title": "Doomed"}
    auth = {"authorization": f"Bearer {cli_gateway.key}"}
    with httpx.Client(base_url=cli_gateway.url, timeout=60, headers=auth) as client:
        assert client.post("/v1/documents", json=document).status_code == 200

    shown = lore(cli_gateway, "status", "cli-doomed", "--tenant", TENANT)
    assert shown.returncode == 0, shown.stderr
    assert "indexed" in shown.stdout and "Doomed" in shown.stdout
    record = parsed(lore(cli_gateway, "status", "cli-doomed", "--tenant", TENANT, "--json"))
    assert record["state"] == "indexed" and record["chunks"] == 1

    deleted = lore(cli_gateway, "delete", "cli-doomed", "--tenant", TENANT)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == f"deleted {TENANT}/cli-doomed (1 chunks removed)"

    gone = lore(cli_gateway, "status", "cli-doomed", "--tenant", TENANT, "--json")
    assert gone.returncode == 1
    assert parsed(gone)["status"] == 404 and parsed(gone)["error"] == "not_found"
    assert "404 not_found" in gone.stderr


def test_an_unknown_job_and_an_invalid_request_print_the_gateways_detail(cli_gateway: Gateway) -> None:
    unknown = lore(cli_gateway, "jobs", "0" * 32, "--tenant", TENANT)
    assert unknown.returncode == 1
    assert "error: the gateway answered 404 not_found: no job" in unknown.stderr
    invalid = lore(cli_gateway, "ask", "x" * 2001, "--json")
    assert invalid.returncode == 1
    assert parsed(invalid)["error"] == "invalid_request"
    assert "question:" in invalid.stderr


def test_a_gateway_that_is_down_is_named_and_exits_3() -> None:
    down = Gateway(f"http://127.0.0.1:{free_port()}", "unused")
    for args in (["status", "x"], ["ask", QUESTION], ["jobs"]):
        run = lore(down, *args)
        assert run.returncode == 3, (args, run.stderr)
        assert f"cannot reach the gateway at {down.url}" in run.stderr


def test_keys_are_created_listed_and_revoked_by_an_admin(cli_gateway: Gateway) -> None:
    made = lore(cli_gateway, "keys", "create", "reader", "--name", "cli reader", "--json")
    assert made.returncode == 0, made.stderr
    key = parsed(made)
    assert key["tenant"] == TENANT and key["role"] == "reader" and key["key"].startswith("lore_")
    reader = Gateway(cli_gateway.url, key["key"])
    assert lore(reader, "status", "cli-retention", "--tenant", TENANT, "--json").returncode in (0, 1)

    listed = parsed(lore(cli_gateway, "keys", "list", "--json"))["keys"]
    mine = [k for k in listed if k["key_id"] == key["key_id"]]
    assert mine and "key" not in mine[0] and mine[0]["revoked_at"] is None
    assert all(k["tenant"] == TENANT for k in listed)

    refused = lore(reader, "keys", "create", "admin", "--json")
    assert refused.returncode == 1 and parsed(refused)["status"] == 403

    revoked = lore(cli_gateway, "keys", "revoke", key["key_id"], "--json")
    assert revoked.returncode == 0 and parsed(revoked)["revoked_at"]
    after = lore(reader, "keys", "list", "--json")
    assert after.returncode == 1 and parsed(after)["status"] == 401
