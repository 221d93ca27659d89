"""The `lore` CLI without a gateway: arguments, path expansion, batching, Server-Sent Events and
output. Commands run through typer's `CliRunner` with an `httpx.MockTransport` as the gateway
(handed in as the click context's `obj`); tests/integration/test_cli.py runs the real entry point
against a real stack.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from lore_cli.client import Event, Upload, format_detail, parse_sse
from lore_cli.ingest import IngestResult
from lore_cli.main import app
from lore_cli.paths import batches, expand
from lore_cli.render import citations, failures_table, ingest_summary, jobs_table, progress_bar

Handler = Callable[[httpx.Request], httpx.Response]
ANSWER: dict[str, Any] = {
    "answer": "Deleted files are kept for 30 days. [1]",
    "citations": [
        {
            "marker": 1,
            "document_id": "retention",
            "title": "Data retention",
            "source": "docs/retention.md",
            "chunk": 0,
            "score": 0.6912,
            "text": "Deleted files are kept for 30 days.",
        }
    ],
    "mode": "extractive",
    "degraded": False,
    "reason": None,
}


def lore(*args: str, handler: Handler | None = None, env: dict[str, str] | None = None) -> Result:
    transport = httpx.MockTransport(handler) if handler else None
    return CliRunner().invoke(app, list(args), obj=transport, env=env)


def sse(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def plain(text: str) -> str:
    """Output without the line breaks and padding rich adds to fit the terminal width."""
    return re.sub(r"\s+", " ", re.sub(r"[\u2500-\u257f]", " ", text)).strip()


# Arguments


@pytest.mark.parametrize(
    "args",
    [
        ["ingest"],
        ["ask"],
        ["ask", "q", "--top-k", "0"],
        ["ask", "q", "--mode", "fuzzy"],
        ["status"],
        ["nope"],
    ],
)
def test_wrong_usage_exits_2_without_calling_the_gateway(args: list[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"called the gateway: {request.url}")

    assert lore(*args, handler=refuse).exit_code == 2


def test_url_and_key_come_from_the_environment_and_the_key_is_a_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"document_id": "a", "tenant": "t1", "state": "indexed", "chunks": 2})

    env = {"LORE_URL": "http://lore.example:9000/", "LORE_API_KEY": "lore_k_s"}
    result = lore("status", "a", "--tenant", "t1", handler=gateway, env=env)
    assert result.exit_code == 0, result.output
    assert str(seen[0].url) == "http://lore.example:9000/v1/documents/t1/a"
    assert seen[0].headers["authorization"] == "Bearer lore_k_s"
    # Flags win over the environment; no key, no header.
    result = lore("status", "a", "--url", "http://other:1", handler=gateway, env={"LORE_API_KEY": ""})
    assert str(seen[1].url) == "http://other:1/v1/documents/default/a"
    assert "authorization" not in seen[1].headers


def test_a_4xx_prints_the_json_detail_and_exits_1() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "not_found", "detail": "document default/x does not exist"})

    result = lore("status", "x", handler=gateway)
    assert result.exit_code == 1
    assert "404 not_found: document default/x does not exist" in plain(result.stderr)
    assert result.stdout == ""
    result = lore("delete", "x", "--json", handler=gateway)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "status": 404,
        "error": "not_found",
        "detail": "document default/x does not exist",
    }


def test_an_unreachable_gateway_is_named_and_exits_3() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = lore("jobs", "--url", "http://127.0.0.1:1", handler=down)
    assert result.exit_code == 3
    assert "cannot reach the gateway at http://127.0.0.1:1" in plain(result.stderr)
    assert "Connection refused" in plain(result.stderr)


def test_validation_details_are_listed_by_field() -> None:
    detail = [{"field": "question", "problem": "too long"}, {"field": None, "problem": "bad"}]
    assert format_detail(detail) == "question: too long; body: bad"
    assert format_detail({"a": 1}) == '{"a": 1}'


# Paths


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ["docs/a.md", "docs/b.TXT", "docs/sub/c.jsonl", "docs/sub/d.png", "docs/.hidden.md"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "docs/.git").mkdir()
    (tmp_path / "docs/.git/config.txt").write_text("x")
    (tmp_path / "notes.bin").write_bytes(b"\0")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_directories_are_walked_for_parseable_files_and_hidden_entries_skipped(tree: Path) -> None:
    found = expand(["docs"])
    assert [u.name for u in found.uploads] == ["docs/a.md", "docs/b.TXT", "docs/sub/c.jsonl"]
    assert found.missing == []


def test_a_named_file_is_sent_whatever_its_type(tree: Path) -> None:
    assert [u.name for u in expand(["notes.bin", "./docs/sub/d.png"]).uploads] == [
        "notes.bin",
        "docs/sub/d.png",
    ]


def test_globs_expand_recursively_and_each_file_is_sent_once(tree: Path) -> None:
    found = expand(["docs/**/*.jsonl", "docs/sub", "docs/*.md"])
    assert [u.name for u in found.uploads] == ["docs/sub/c.jsonl", "docs/a.md"]


def test_paths_that_name_nothing_are_reported_and_the_rest_still_go(tree: Path) -> None:
    found = expand(["missing.md", "docs/a.md", "docs/*.pdf"])
    assert [u.name for u in found.uploads] == ["docs/a.md"]
    assert found.missing == ["missing.md", "docs/*.pdf"]


def test_absolute_paths_keep_their_absolute_name(tree: Path) -> None:
    [upload] = expand([str(tree / "docs" / "a.md")]).uploads
    assert upload.name == (tree / "docs" / "a.md").as_posix()


def test_batches_hold_at_most_n_files_and_n_bytes_and_a_big_file_goes_alone(tmp_path: Path) -> None:
    sizes = [10, 10, 10, 50, 10, 10]
    uploads = []
    for n, size in enumerate(sizes):
        (tmp_path / f"{n}.txt").write_bytes(b"x" * size)
        uploads.append(Upload(tmp_path / f"{n}.txt", f"{n}.txt"))
    groups = [[u.name for u in b] for b in batches(uploads, max_files=2, max_bytes=25)]
    assert groups == [["0.txt", "1.txt"], ["2.txt"], ["3.txt"], ["4.txt", "5.txt"]]


# Ingest through a stand-in gateway


class JobsGateway:
    """Answers `POST /v1/jobs` with a running job, then `GET` with it finished; files named
    `bad*` fail. Records the multipart file names of each upload."""

    def __init__(self) -> None:
        self.uploads: list[list[str]] = []
        self.fields: list[dict[str, str]] = []
        self.jobs: dict[str, dict[str, Any]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/jobs":
            body = request.read().decode(errors="replace")
            names = re.findall(r'name="files"; filename="([^"]+)"', body)
            fields = dict(re.findall(r'name="(\w+)"\r\n\r\n([^\r]*)', body))
            self.uploads.append(names)
            self.fields.append(fields)
            job_id = f"job-{len(self.jobs) + 1}"
            failed = [n for n in names if Path(n).name.startswith("bad")]
            indexed = len(names) - len(failed)
            self.jobs[job_id] = {
                "job_id": job_id,
                "tenant": fields.get("tenant", "default"),
                "state": "finished",
                "total": len(names),
                "counts": {
                    "queued": 0,
                    "indexed": indexed,
                    "unchanged": 0,
                    "failed": len(failed),
                },
                "failures": [{"document_id": None, "source": n, "reason": "not UTF-8 text"} for n in failed],
                "created_at": "2026-11-26T13:00:00Z",
                "updated_at": "2026-11-26T13:00:01Z",
            }
            running = {**self.jobs[job_id], "state": "running", "failures": []}
            running["counts"] = {"queued": len(names), "indexed": 0, "unchanged": 0, "failed": 0}
            return httpx.Response(202, json=running)
        if request.method == "GET" and request.url.path.startswith("/v1/jobs/"):
            return httpx.Response(200, json=self.jobs[request.url.path.rsplit("/", 1)[1]])
        return httpx.Response(404, json={"error": "not_found", "detail": "no route"})


def test_ingest_uploads_batches_follows_the_jobs_and_exits_0_when_all_indexed(tree: Path) -> None:
    gateway = JobsGateway()
    result = lore("ingest", "docs", "--batch-size", "2", "--tenant", "acme", "--json", handler=gateway)
    assert result.exit_code == 0, result.output
    assert gateway.uploads == [["docs/a.md", "docs/b.TXT"], ["docs/sub/c.jsonl"]]
    assert gateway.fields[0] == {"tenant": "acme"}
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["files"] == 3
    assert report["counts"] == {"indexed": 3, "unchanged": 0, "failed": 0, "queued": 0}
    assert [job["state"] for job in report["jobs"]] == ["finished", "finished"]


def test_ingest_counts_failed_files_and_missing_paths_and_exits_1(tree: Path) -> None:
    (tree / "docs/bad.txt").write_bytes(b"\xff\xfe")
    gateway = JobsGateway()
    result = lore("ingest", "docs", "nowhere", "--text-field", "body", handler=gateway)
    assert result.exit_code == 1, result.output
    assert gateway.fields[0] == {"text_field": "body"}  # no tenant named: the key's
    out = plain(result.stdout)
    assert "indexed 3" in out and "failed 2" in out
    assert "docs/bad.txt not UTF-8 text" in out
    assert "nowhere no such file, directory or matching pattern" in out
    assert "no such file, directory or matching pattern: nowhere" in plain(result.stderr)


def test_ingest_without_waiting_names_the_running_jobs_and_exits_0(tree: Path) -> None:
    gateway = JobsGateway()
    result = lore("ingest", "docs/a.md", "--no-wait", handler=gateway)
    assert result.exit_code == 0, result.output
    assert "still running on the gateway: job-1" in plain(result.stdout)
    assert "queued 1" in plain(result.stdout)


def test_ingest_of_nothing_but_missing_paths_calls_no_gateway_and_exits_1(tree: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("called the gateway")

    result = lore("ingest", "nowhere", "nothing/*.md", "--json", handler=refuse)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [f["source"] for f in report["failures"]] == ["nowhere", "nothing/*.md"]
    assert report["counts"]["failed"] == 2 and report["ok"] is False


def test_a_batch_the_gateway_refuses_fails_its_files_and_the_next_batch_still_goes(tree: Path) -> None:
    jobs = JobsGateway()

    def gateway(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and not jobs.uploads:
            jobs.uploads.append([])
            return httpx.Response(
                413, json={"error": "too_large", "detail": "the body is over 4000000 bytes"}
            )
        return jobs(request)

    result = lore("ingest", "docs", "--batch-size", "2", "--json", handler=gateway)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [(f["source"], f["reason"]) for f in report["failures"]] == [
        (name, "the gateway answered 413 too_large: the body is over 4000000 bytes")
        for name in ["docs/a.md", "docs/b.TXT"]
    ]
    assert report["counts"]["indexed"] == 1


def test_a_refusal_that_is_not_about_the_files_stops_the_ingest_with_its_detail(tree: Path) -> None:
    calls: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        refusal = {"error": "unauthenticated", "detail": "send an API key as `Authorization: Bearer <key>`"}
        return httpx.Response(401, json=refusal)

    result = lore("ingest", "docs", "--batch-size", "1", handler=gateway)
    assert result.exit_code == 1
    assert len(calls) == 1, "every batch would be refused alike"
    assert "401 unauthenticated: send an API key" in plain(result.stderr)
    assert result.stdout == ""


# Answers


def test_ask_prints_each_token_as_it_arrives_then_the_citations() -> None:
    seen_before_second_token: list[str] = []

    def events() -> Iterator[bytes]:
        yield sse("token", {"text": "Deleted files are kept "})
        seen_before_second_token.append(cast(io.BytesIO, sys.stdout.buffer).getvalue().decode())
        yield sse("token", {"text": "for 30 days. [1]"})
        yield sse("citations", {"citations": ANSWER["citations"]})
        yield sse("final", ANSWER)

    bodies: list[dict[str, Any]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.read()))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=events())

    result = lore(
        "ask", "How long are deleted files kept?", "--top-k", "3", "--mode", "text", handler=gateway
    )
    assert result.exit_code == 0, result.output
    assert bodies == [
        {
            "question": "How long are deleted files kept?",
            "top_k": 3,
            "mode": "text",
            "stream": True,
        }
    ]
    assert seen_before_second_token == ["Deleted files are kept "]
    assert result.stdout == (
        "Deleted files are kept for 30 days. [1]\n"
        "Citations:\n"
        "  [1] Data retention (docs/retention.md, chunk 0, score 0.69)\n"
    )


def test_a_degraded_stream_warns_and_prints_the_answer_that_replaces_the_tokens() -> None:
    degraded = {**ANSWER, "degraded": True, "reason": "the model timed out"}

    def gateway(request: httpx.Request) -> httpx.Response:
        body = sse("token", {"text": "Deleted fi"}) + sse(
            "error", {"error": "llm_failed", "detail": "timeout"}
        )
        body += sse("citations", {"citations": ANSWER["citations"]}) + sse("final", degraded)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    result = lore("ask", "q", handler=gateway)
    assert result.exit_code == 0
    assert "warning: llm_failed: timeout" in result.stderr
    assert result.stdout.startswith(
        "Deleted fi\nAnswer (the model timed out):\nDeleted files are kept for 30 days. [1]\n"
    )


def test_a_stream_without_its_final_event_exits_1() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        body = sse("token", {"text": "Deleted"}) + sse("error", {"error": "upstream_cut", "detail": "cut"})
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    result = lore("ask", "q", handler=gateway)
    assert result.exit_code == 1
    assert "ended without its final answer" in result.stderr


def test_ask_json_asks_without_streaming_and_prints_the_answer() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.read())["stream"] is False
        return httpx.Response(200, json=ANSWER)

    result = lore("ask", "q", "--json", handler=gateway)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == ANSWER


def test_server_sent_events_are_split_on_blank_lines_and_data_lines_joined() -> None:
    lines = ["event: token", 'data: {"text":', 'data: "a"}', "", ": comment", "data: 1", ""]
    assert list(parse_sse(iter(lines))) == [Event("token", {"text": "a"}), Event("message", 1)]


# Output


def test_citations_name_title_source_chunk_and_score() -> None:
    no_source = {**ANSWER["citations"][0], "source": None, "title": ""}
    assert citations({"citations": [no_source]}) == "Citations:\n  [1] retention (chunk 0, score 0.69)"
    assert citations({"citations": []}) == "Citations: none"


def render(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(renderable)
    return plain(console.file.getvalue())  # type: ignore[attr-defined]


def test_the_ingest_summary_counts_outcomes_and_lists_failures_with_reasons() -> None:
    job = {
        "job_id": "j1",
        "state": "cancelled",
        "counts": {"queued": 1, "indexed": 5, "unchanged": 2, "failed": 1},
        "failures": [{"document_id": "x", "source": "x.pdf", "reason": "no text in the PDF"}],
    }
    result = IngestResult(tenant="default", files=9, jobs=[job], seconds=2.0)
    result.local_failures = [{"document_id": None, "source": "gone", "reason": "no such file"}]
    text = render(ingest_summary(result))
    assert "9 files, 10 documents in 2.0 s (5.0 docs/s), tenant default" in text
    assert "indexed 5" in text and "unchanged 2" in text and "failed 2" in text and "queued 1" in text
    assert "gone no such file" in text and "x.pdf x no text in the PDF" in text
    assert "cancelled: job j1" in text
    assert result.ok is False


def test_a_long_failure_list_is_cut_for_people_and_complete_in_json() -> None:
    failures = [{"document_id": None, "source": f"f{n}.txt", "reason": "empty"} for n in range(60)]
    text = render(failures_table(failures, limit=50))
    assert "60 failures" in text and "f49.txt" in text and "f50.txt" not in text
    assert "... 10 more (--json lists them all)" in text
    result = IngestResult(tenant=None, files=60, local_failures=failures)
    assert len(result.as_json()["failures"]) == 60


def test_the_jobs_table_has_one_row_per_job() -> None:
    jobs = [
        {
            "job_id": "j2",
            "state": "running",
            "total": 4,
            "counts": {"indexed": 1, "queued": 3},
            "created_at": "2026-11-26T13:01:02.5Z",
        },
        {"job_id": "j1", "state": "finished", "total": 1, "counts": {"unchanged": 1}, "created_at": None},
    ]
    text = render(jobs_table(jobs))
    assert "j2 running 4 1 0 0 3 2026-11-26 13:01:02 j1 finished 1 0 1 0 0" in text


def test_job_ids_are_never_cut_on_a_narrow_terminal() -> None:
    job = {"job_id": "e1311dbb603345779f7bfa67e113872a", "state": "cancelled", "total": 1000, "counts": {}}
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(jobs_table([job], console.width))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "e1311dbb603345779f7bfa67e113872a" in shown and "cancelled" in shown


def test_the_progress_bar_shows_count_rate_and_eta() -> None:
    console = Console(file=io.StringIO(), width=160, color_system=None, force_terminal=True)
    progress = progress_bar(console)
    now = [0.0]
    progress.get_time = lambda: now[0]
    task = progress.add_task("indexing", total=100, unit="docs")
    progress.start_task(task)
    for _ in range(4):
        now[0] += 1.0
        progress.advance(task, 10)
    console.print(progress.get_renderable())
    text = plain(console.file.getvalue())  # type: ignore[attr-defined]
    assert "indexing" in text and "40/100" in text and "40%" in text
    assert "10.0 docs/s" in text
    assert "eta 0:00:06" in text


def test_rate_and_eta_of_a_task_without_a_recent_estimate_use_the_average() -> None:
    console = Console(file=io.StringIO(), width=160, color_system=None, force_terminal=True)
    progress = progress_bar(console)
    now = [0.0]
    progress.get_time = lambda: now[0]
    task = progress.add_task("uploading", total=10, unit="files")
    progress.start_task(task)
    now[0] += 4.0
    progress.update(task, completed=6)  # one update: rich has no speed estimate yet
    console.print(progress.get_renderable())
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "1.5 files/s" in shown and "eta 0:00:02" in shown
    now[0] += 1.0
    progress.update(task, completed=8)
    now[0] += 5.0
    progress.update(task, completed=10)  # finished: the average, not the last burst
    console.print(progress.get_renderable())
    assert "1.0 files/s" in console.file.getvalue()  # type: ignore[attr-defined]
