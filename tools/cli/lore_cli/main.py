"""The `lore` commands. Each one talks to the gateway given by `--url` / `LORE_URL` and prints
tables for a person or, with `--json`, one JSON document on stdout for scripts.

Exit codes: 0 done; 1 something failed (a document, a path, the gateway's 4xx/5xx answer, printed
with its detail); 2 wrong usage; 3 the gateway could not be reached; 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lore_cli import ingest as ingestion
from lore_cli import render
from lore_cli.client import DEFAULT_URL, Gateway, GatewayError, GatewayUnreachable
from lore_cli.paths import expand

FAILED, UNREACHABLE, INTERRUPTED = 1, 3, 130

app = typer.Typer(
    name="lore",
    help="Lore from the command line: ingest files as jobs, follow them, ask questions, manage documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Url = Annotated[
    str, typer.Option("--url", envvar="LORE_URL", help="Base URL of the Lore gateway.", show_envvar=True)
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="LORE_API_KEY", help="Sent as `Authorization: Bearer <key>`.", show_default=False
    ),
]
Tenant = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        "-t",
        envvar="LORE_TENANT",
        help="The tenant (default: the API key's, or `default`).",
        show_default=False,
    ),
]
# Document routes name the tenant in their path: without `--tenant` it is `default`.
DocumentTenant = Annotated[
    str,
    typer.Option(
        "--tenant",
        "-t",
        envvar="LORE_TENANT",
        help="The document's tenant (with a tenant's API key: that one).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout (for scripts).")]


class Mode(StrEnum):
    vector = "vector"
    text = "text"
    hybrid = "hybrid"


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _print_json(value: Any) -> None:
    sys.stdout.write(render.dumps(value) + "\n")
    sys.stdout.flush()


def _fail(message: str, body: dict[str, Any], as_json: bool, code: int) -> NoReturn:
    _err().print(Text.assemble(("error: ", "bold red"), message))
    if as_json:
        _print_json(body)
    raise typer.Exit(code)


@contextmanager
def _gateway(ctx: typer.Context, url: str, api_key: str | None, as_json: bool) -> Iterator[Gateway]:
    """The gateway client; its errors become a message on stderr and the matching exit code."""
    # Unit tests hand an `httpx.MockTransport` in as the context's `obj` (`CliRunner.invoke(obj=...)`).
    transport = ctx.obj if isinstance(ctx.obj, httpx.BaseTransport) else None
    try:
        with Gateway(url, api_key, transport=transport) as gateway:
            yield gateway
    except GatewayUnreachable as exc:
        _fail(str(exc), exc.as_json(), as_json, UNREACHABLE)
    except GatewayError as exc:
        _fail(exc.message, exc.as_json(), as_json, FAILED)


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH...", help="Files, directories (recursive) and glob patterns.", show_default=False
        ),
    ],
    tenant: Tenant = None,
    text_field: Annotated[
        str | None, typer.Option(help="The text field of JSON and JSONL records (the rest is metadata).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Files per job.")] = 100,
    batch_bytes: Annotated[
        int, typer.Option(min=1, help="Bytes per job upload (keep under the gateway's MAX_BODY_BYTES).")
    ] = 3_000_000,
    wait: Annotated[bool, typer.Option(help="Follow the jobs until they finish.")] = True,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Upload files as ingestion jobs, follow them with a progress bar, then show the outcome.

    Exits 1 when a document failed or a path named nothing (the other paths still go).
    """
    found = expand(paths)
    err = _err()
    for path in found.missing:
        err.print(Text.assemble(("error: ", "bold red"), f"{ingestion.MISSING}: {path}"))
    show_progress = not as_json and err.is_terminal and bool(found.uploads)
    progress = render.progress_bar(err) if show_progress else None
    with _gateway(ctx, url, api_key, as_json) as gateway, progress or nullcontext():
        result = ingestion.run(
            gateway,
            found,
            tenant=tenant,
            text_field=text_field,
            max_files=batch_size,
            max_bytes=batch_bytes,
            wait=wait,
            progress=progress,
        )
    if as_json:
        _print_json(result.as_json())
    else:
        _out().print(render.ingest_summary(result))
    if result.interrupted:
        raise typer.Exit(INTERRUPTED)
    if not wait:
        failed = result.counts["failed"] > 0 or bool(result.cancelled)
        raise typer.Exit(FAILED if failed else 0)
    if not result.ok:
        raise typer.Exit(FAILED)


@app.command()
def jobs(
    ctx: typer.Context,
    job_id: Annotated[str | None, typer.Argument(help="Show this job only (with its failures).")] = None,
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """List the tenant's ingestion jobs, most recent first, or show one."""
    out = _out()
    with _gateway(ctx, url, api_key, as_json) as gateway:
        if job_id is not None:
            job = gateway.job(tenant, job_id)
            _print_json(job) if as_json else out.print(render.job_detail(job, out.width))
            return
        listed = gateway.jobs(tenant)
    _print_json({"jobs": listed}) if as_json else out.print(render.jobs_table(listed, out.width))


@app.command()
def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job to cancel.")],
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Cancel an ingestion job (documents already indexed stay)."""
    with _gateway(ctx, url, api_key, as_json) as gateway:
        job = gateway.cancel_job(tenant, job_id)
    out = _out()
    _print_json(job) if as_json else out.print(render.job_detail(job, out.width))


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question.")],
    tenant: Tenant = None,
    top_k: Annotated[int, typer.Option(min=1, max=20, help="Chunks retrieved as evidence.")] = 4,
    mode: Annotated[Mode | None, typer.Option(help="Retrieval mode (default: the server's).")] = None,
    stream: Annotated[bool, typer.Option(help="Print the answer as it is written.")] = True,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Answer a question from the indexed documents, with citations.

    Tokens are printed as the model writes them; `--json` prints the whole answer at the end.
    """
    body: dict[str, Any] = {"question": question, "top_k": top_k}
    if tenant is not None:
        body["tenant"] = tenant
    if mode is not None:
        body["mode"] = mode.value
    out = _out()
    with _gateway(ctx, url, api_key, as_json) as gateway:
        if as_json or not stream:
            answer = gateway.answer(body)
            if as_json:
                _print_json(answer)
            else:
                out.print(answer["answer"], markup=False, soft_wrap=True)
                out.print(render.citations(answer), markup=False, soft_wrap=True)
            return
        answer = _stream_answer(gateway, body, out)
    out.print(render.citations(answer), markup=False, soft_wrap=True)


def _stream_answer(gateway: Gateway, body: dict[str, Any], out: Console) -> dict[str, Any]:
    """Writes the `token` events as they arrive; returns the `final` answer.

    When the model failed mid-stream, `final` carries the degraded answer that replaces the
    streamed text: it is printed after the warning.
    """
    written: list[str] = []
    final: dict[str, Any] | None = None
    line_open = False  # the cursor is after text on the current line

    def end_line() -> None:
        nonlocal line_open
        if line_open:
            sys.stdout.write("\n")
            sys.stdout.flush()
        line_open = False

    for event in gateway.answer_stream(body):
        if event.name == "token":
            text = event.data["text"]
            written.append(text)
            sys.stdout.write(text)
            sys.stdout.flush()
            if text:
                line_open = not text.endswith("\n")
        elif event.name == "error":
            end_line()
            problem = f"{event.data.get('error')}: {event.data.get('detail')}"
            _err().print(Text.assemble(("warning: ", "bold yellow"), problem))
        elif event.name == "final":
            final = event.data
    end_line()
    if final is None:
        _fail("the answer stream ended without its final answer", {"error": "stream_cut"}, False, FAILED)
    if final["answer"] != "".join(written):
        reason = f" ({final['reason']})" if final.get("reason") else ""
        out.print(f"Answer{reason}:", style="yellow", markup=False)
        out.print(final["answer"], markup=False, soft_wrap=True)
    return final


@app.command()
def status(
    ctx: typer.Context,
    document_id: Annotated[str, typer.Argument(metavar="ID", help="The document's id.")],
    tenant: DocumentTenant = "default",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """The indexing status of one document."""
    with _gateway(ctx, url, api_key, as_json) as gateway:
        record = gateway.document(tenant, document_id)
    _print_json(record) if as_json else _out().print(render.document_table(record))


@app.command()
def delete(
    ctx: typer.Context,
    document_id: Annotated[str, typer.Argument(metavar="ID", help="The document's id.")],
    tenant: DocumentTenant = "default",
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Remove a document: its chunks leave the index and its status is forgotten."""
    with _gateway(ctx, url, api_key, as_json) as gateway:
        deleted = gateway.delete(tenant, document_id)
    if as_json:
        _print_json(deleted)
    else:
        name = f"{deleted['tenant']}/{deleted['document_id']}"
        _out().print(f"deleted {name} ({deleted['chunks_removed']} chunks removed)", markup=False)


keys = typer.Typer(help="API keys of a tenant (an admin key, or the operator key for any tenant).")
app.add_typer(keys, name="keys")


class Role(StrEnum):
    reader = "reader"
    writer = "writer"
    admin = "admin"


def _keys_table(listed: list[dict[str, Any]]) -> Table:
    table = Table("key id", "tenant", "role", "name", "created", "revoked")
    for key in listed:
        table.add_row(
            key["key_id"],
            key["tenant"],
            key["role"],
            key["name"],
            key["created_at"],
            key.get("revoked_at") or "",
        )
    return table


@keys.command("create")
def create_key(
    ctx: typer.Context,
    role: Annotated[Role, typer.Argument(help="reader, writer or admin.")],
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "",
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Create a key; its secret is printed once, store it now."""
    with _gateway(ctx, url, api_key, as_json) as gateway:
        made = gateway.create_key(role.value, name, tenant)
    if as_json:
        _print_json(made)
        return
    _err().print(
        f"key {made['key_id']} ({made['role']} of tenant {made['tenant']}); shown once:", markup=False
    )
    _out().print(made["key"], markup=False)


@keys.command("list")
def list_keys(
    ctx: typer.Context,
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """The tenant's keys, revoked ones included, without their secrets."""
    with _gateway(ctx, url, api_key, as_json) as gateway:
        listed = gateway.keys(tenant)
    _print_json({"keys": listed}) if as_json else _out().print(_keys_table(listed))


@keys.command("revoke")
def revoke_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (`lore keys list`).")],
    tenant: Tenant = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Revoke a key: the next call made with it is refused."""
    with _gateway(ctx, url, api_key, as_json) as gateway:
        revoked = gateway.revoke_key(key_id, tenant)
    _print_json(revoked) if as_json else _out().print(_keys_table([revoked]))


def main() -> None:
    app()
