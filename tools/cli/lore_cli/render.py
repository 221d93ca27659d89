"""How the CLI shows things to a person: rich tables and a progress bar (JSON is printed as is)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from lore_cli.ingest import IngestResult


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _speed(task: Task) -> float | None:
    """Items per second: rich's recent estimate while running, else the average so far.

    rich estimates from the updates of the last 30 s; jobs report progress in steps (a batch of
    documents at a time) that can be further apart than that. A finished task shows its average.
    """
    speed = None if task.finished else task.speed
    if speed is None and task.elapsed and task.completed:
        speed = task.completed / task.elapsed
    return speed


class RateColumn(ProgressColumn):
    """Items per second in the task's `unit` field, e.g. `12.3 docs/s` (rich's own speed column
    counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = _speed(task)
        shown = "?" if speed is None else f"{speed:.1f}"
        return Text(f"{shown} {task.fields.get('unit', 'docs')}/s", style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """`eta 0:01:23`: what is left at the rate of `RateColumn`."""

    def render(self, task: Task) -> Text:
        speed = _speed(task)
        if task.finished:
            shown = "0:00:00"
        elif task.total is None or not speed:
            shown = "-:--:--"
        else:
            shown = str(timedelta(seconds=int((task.total - task.completed) / speed)))
        return Text(f"eta {shown}", style="progress.remaining")


def progress_bar(console: Console) -> Progress:
    """Bars with count, percentage, rate (in the task's `unit`), elapsed time and ETA."""
    return Progress(
        SpinnerColumn(finished_text="[green]✓"),
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        EtaColumn(),
        console=console,
    )


def ingest_summary(result: IngestResult) -> RenderableType:
    """The counts by outcome, then one row per failure with its reason."""
    counts = result.counts
    documents = sum(counts.values())
    rate = documents / result.seconds if result.seconds else 0.0
    headline = Text(
        f"{result.files} files, {documents} documents in {result.seconds:.1f} s ({rate:.1f} docs/s), "
        f"tenant {result.tenant or 'default'}"
    )
    table = Table()
    table.add_column("outcome")
    table.add_column("documents", justify="right")
    for name, style in (("indexed", "green"), ("unchanged", "cyan"), ("failed", "red"), ("queued", "yellow")):
        if name != "queued" or counts[name]:
            table.add_row(Text(name, style=style), str(counts[name]))
    parts: list[RenderableType] = [headline, table]
    if result.failures:
        parts.append(failures_table(result.failures))
    notes = []
    if result.cancelled:
        notes.append(f"cancelled: job {', '.join(result.cancelled)}")
    running = [job["job_id"] for job in result.jobs if job.get("state") == "running"]
    if running:
        stopped = "stopped following; " if result.interrupted else ""
        notes.append(f"{stopped}still running on the gateway: {', '.join(running)} (`lore jobs ID`)")
    parts.extend(Text(note, style="yellow") for note in notes)
    return Group(*parts)


def failures_table(failures: list[dict[str, Any]], limit: int = 50) -> Table:
    """One row per failure, the first `limit` of them (`--json` lists all)."""
    table = Table(title=f"{len(failures)} failures", title_justify="left", title_style="red")
    table.add_column("source")
    table.add_column("document")
    table.add_column("reason", overflow="fold")
    for item in failures[:limit]:
        table.add_row(item.get("source") or "", item.get("document_id") or "", item.get("reason") or "")
    if len(failures) > limit:
        table.add_row(f"... {len(failures) - limit} more", "", "(--json lists them all)", style="dim")
    return table


_JOB_COUNTS = ("indexed", "unchanged", "failed", "queued")
# Dropped in this order while the table is wider than the terminal; the job id is never cut
# (it is what one copies), the state and the outcome counts stay.
_OPTIONAL_COLUMNS = ("created", "queued", "total", "unchanged")


def jobs_table(jobs: list[dict[str, Any]], width: int | None = None) -> Table:
    """One row per job; on a terminal narrower than `width` the least useful columns go first."""
    dropped: set[str] = set()
    table = _jobs_table(jobs, dropped)
    for name in _OPTIONAL_COLUMNS:
        if width is None or _width(table) <= width:
            break
        dropped.add(name)
        table = _jobs_table(jobs, dropped)
    return table


def _width(table: Table) -> int:
    console = Console(width=10_000, file=io.StringIO())
    return Measurement.get(console, console.options, table).maximum


def _jobs_table(jobs: list[dict[str, Any]], dropped: set[str]) -> Table:
    table = Table(title=f"{len(jobs)} jobs", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("job", no_wrap=True)
    table.add_column("state", no_wrap=True)
    counts = [name for name in ("total", *_JOB_COUNTS) if name not in dropped]
    for name in counts:
        table.add_column(name, justify="right", no_wrap=True)
    if "created" not in dropped:
        table.add_column("created", no_wrap=True)
    for job in jobs:
        numbers = {"total": job.get("total", 0), **job.get("counts", {})}
        cells: list[RenderableType] = [
            job["job_id"],
            Text(job["state"], style=_STATE_STYLES.get(job["state"], "")),
            *(str(numbers.get(name, 0)) for name in counts),
        ]
        if "created" not in dropped:
            cells.append(_timestamp(job.get("created_at")))
        table.add_row(*cells)
    return table


def job_detail(job: dict[str, Any], width: int | None = None) -> RenderableType:
    parts: list[RenderableType] = [jobs_table([job], width)]
    if job.get("failures"):
        parts.append(failures_table(job["failures"]))
    return Group(*parts)


def document_table(status: dict[str, Any]) -> Table:
    """A document's status record as `field value` rows (empty fields left out)."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in status.items():
        if value in (None, ""):
            continue
        shown: RenderableType = Text(str(value), style=_STATE_STYLES.get(str(value), ""))
        if key == "updated_at":
            shown = _timestamp(value)
        table.add_row(key, shown)
    return table


def citations(answer: dict[str, Any]) -> str:
    """`Citations:` and one line per citation: marker, title, source, chunk and score."""
    if not answer.get("citations"):
        return "Citations: none"
    lines = ["Citations:"]
    for c in answer["citations"]:
        where = ", ".join(p for p in (c.get("source"), f"chunk {c['chunk']}", f"score {c['score']:.2f}") if p)
        lines.append(f"  [{c['marker']}] {c['title'] or c['document_id']} ({where})")
    return "\n".join(lines)


_STATE_STYLES = {
    "indexed": "green",
    "finished": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "processing": "cyan",
    "accepted": "cyan",
    "deleted": "dim",
}


def _timestamp(value: Any) -> str:
    """An ISO timestamp to the second, as `2026-11-26 13:20:05`."""
    text = str(value or "")
    return text[:19].replace("T", " ")
