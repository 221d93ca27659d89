"""Child processes that are always stopped: own process group, logs to a file, TERM then KILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Proc:
    name: str
    args: Sequence[str]
    log: Path
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._popen = subprocess.Popen(
                list(self.args),
                cwd=self.cwd,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._popen is None else self._popen.pid

    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the whole process group, SIGKILL after ``timeout`` seconds."""
        if self._popen is None or self._popen.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._popen.wait()

    def kill(self) -> None:
        """SIGKILL, no grace period (crash simulation)."""
        if self._popen is not None and self._popen.poll() is None:
            self._signal(signal.SIGKILL)
            self._popen.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _signal(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, sig)


def answers(url: str, status: int) -> bool:
    """Whether ``url`` answers GET with ``status`` now (unreachable: no)."""
    try:
        return httpx.get(url, timeout=2).status_code == status
    except httpx.TransportError:
        return False


def wait_until(proc: Proc, ready: Callable[[], bool], timeout: float, *, interval: float = 0.2) -> None:
    """Polls ``ready`` until it is true.

    Raises:
        RuntimeError: ``proc`` exited first (with the end of its log).
        TimeoutError: not ready within ``timeout`` seconds (with the end of its log).
    """
    deadline = time.monotonic() + timeout
    while True:
        if not proc.running():
            raise RuntimeError(f"{proc.name} exited with {proc.returncode()}:\n{proc.tail()}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.name} not ready after {timeout:.0f}s:\n{proc.tail()}")
        time.sleep(interval)
