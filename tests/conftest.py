"""Session fixtures: one real Lore stack (Redis + three daprd sidecars + three apps) on free ports.

Integration and e2e tests share it; a module that needs a differently configured stack (another
broker) builds its own with `new_stack`. A stack's run directory (logs of every process, rendered Dapr
resources, Redis data) is kept by pytest's tmp_path retention, and the end of each log is printed
after a failed run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx
import pytest

from lore_stack import runfile
from lore_stack.stack import Stack, free_port
from tests.integration.helpers import gateway_auth
from tests.otlp import OtlpCollector

ROOT = Path(__file__).resolve().parents[1]
_STACKS: list[Stack] = []


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpCollector]:
    collector = OtlpCollector()
    collector.start()
    yield collector
    collector.stop()


def new_stack(
    tmp_path_factory: pytest.TempPathFactory,
    otlp: OtlpCollector,
    *,
    name: str = "stack",
    broker: Literal["redis", "kafka"] = "redis",
    trusted_app_ids: tuple[str, ...] = (),
) -> Stack:
    """A stack (not started yet) on free ports, with its own run directory and secrets.

    ``trusted_app_ids``: other callers that may invoke lore-query and lore-ingest (`Stack`).
    Its logs are shown after a failed run; the caller starts and stops it.
    """
    daprd = Path(os.environ.get("DAPRD", ROOT / ".cache" / "dapr" / "bin" / "daprd"))
    if not daprd.exists():
        pytest.fail(f"daprd not found at {daprd}: run `make dapr` (make test does)")
    spec = runfile.load(ROOT / "dapr.yaml")
    spec = dataclasses.replace(
        spec,
        apps=tuple(a.with_ports(free_port(), free_port(), free_port(), free_port()) for a in spec.apps),
        log_level="info",
    )
    run_dir = tmp_path_factory.mktemp(name)
    lore = Stack(
        runfile=spec,
        run_dir=run_dir,
        daprd=daprd,
        secrets_file=run_dir / "secrets.json",
        redis_port=free_port(),
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "LOG_LEVEL": "INFO",
            # Per-key limits are tested by test_auth.py; the other suites send bursts on purpose.
            "RATE_LIMIT": "",
        },
        broker=broker,
        kafka_port=free_port(),
        trusted_app_ids=trusted_app_ids,
    )
    _STACKS.append(lore)
    return lore


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, otlp: OtlpCollector) -> Iterator[Stack]:
    lore = new_stack(tmp_path_factory, otlp)
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
        if lore.kafka is not None:
            terminalreporter.write_sep("-", str(lore.kafka.log))
            terminalreporter.write_line(lore.kafka.tail(25))
        if lore.sentry is not None:
            terminalreporter.write_sep("-", str(lore.sentry.proc.log))
            terminalreporter.write_line(lore.sentry.proc.tail(25))
        if lore.control_plane is not None:
            for proc in (lore.control_plane.placement, lore.control_plane.scheduler):
                terminalreporter.write_sep("-", str(proc.log))
                terminalreporter.write_line(proc.tail(25))


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    # Authenticated as a holder of the key of whichever tenant each request names.
    with httpx.Client(
        base_url=stack.url("lore-gateway"),
        timeout=60,
        auth=gateway_auth(stack),
    ) as client:
        yield client
