"""Session fixtures: one real Lore stack (Redis + three daprd sidecars + three apps) on free ports.

Integration and e2e tests share it. Its run directory (logs of every process, rendered Dapr
resources, Redis data) is kept by pytest's tmp_path retention, and the end of each log is printed
after a failed run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lore_stack import runfile
from lore_stack.stack import Stack, free_port
from tests.otlp import OtlpCollector

ROOT = Path(__file__).resolve().parents[1]
_STACKS: list[Stack] = []


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpCollector]:
    collector = OtlpCollector()
    collector.start()
    yield collector
    collector.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    daprd = Path(os.environ.get("DAPRD", ROOT / ".cache" / "dapr" / "bin" / "daprd"))
    if not daprd.exists():
        pytest.fail(f"daprd not found at {daprd}: run `make dapr` (make test does)")
    spec = runfile.load(ROOT / "dapr.yaml")
    spec = dataclasses.replace(
        spec,
        apps=tuple(a.with_ports(free_port(), free_port(), free_port(), free_port()) for a in spec.apps),
        log_level="info",
    )
    run_dir = tmp_path_factory.mktemp("stack")
    lore = Stack(
        runfile=spec,
        run_dir=run_dir,
        daprd=daprd,
        secrets_file=run_dir / "secrets.json",
        redis_port=free_port(),
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "LOG_LEVEL": "INFO"},
    )
    _STACKS.append(lore)
    try:
        lore.start(timeout=180)
        yield lore
    finally:
        lore.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    """After a failed run, shows the end of every stack process's log (CI keeps only the output)."""
    if exitstatus == 0:
        return
    for lore in _STACKS:
        for processes in lore.apps.values():
            for proc in (processes.daprd, processes.app):
                terminalreporter.write_sep("-", str(proc.log))
                terminalreporter.write_line(proc.tail(25))


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url("lore-gateway"), timeout=60) as client:
        yield client
