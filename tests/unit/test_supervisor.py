"""The local stack's supervisor restarts what dies and gives up loudly on a crash loop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lore_stack.procs import Proc
from lore_stack.supervisor import Supervisor


def _wait(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_killed_process_is_restarted_and_reported(tmp_path: Path) -> None:
    proc = Proc("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], log=tmp_path / "s.log")
    proc.start()
    lines: list[str] = []
    supervisor = Supervisor(lines.append, interval=0.05)
    supervisor.watch("sleeper", proc, proc.start)
    supervisor.start()
    try:
        proc.kill()
        assert _wait(lambda: supervisor.restarts["sleeper"] == 1)
        assert proc.running()
        assert any("sleeper exited" in line for line in lines)
        assert any("sleeper restarted" in line for line in lines)
    finally:
        supervisor.stop()
        proc.stop()


def test_paused_process_is_left_alone(tmp_path: Path) -> None:
    proc = Proc("paused", [sys.executable, "-c", "import time; time.sleep(60)"], log=tmp_path / "p.log")
    proc.start()
    supervisor = Supervisor(lambda _: None, interval=0.05)
    supervisor.watch("paused", proc, proc.start)
    supervisor.pause("paused")
    supervisor.start()
    try:
        proc.stop()
        time.sleep(0.3)
        assert not proc.running()
        assert supervisor.restarts["paused"] == 0
    finally:
        supervisor.stop()


def test_crash_loop_is_given_up_loudly(tmp_path: Path) -> None:
    proc = Proc("crasher", [sys.executable, "-c", "raise SystemExit(3)"], log=tmp_path / "c.log")
    lines: list[str] = []
    supervisor = Supervisor(lines.append, interval=0.02, max_restarts=2, window=60)
    # No back-off wait in this test: restart as soon as the death is seen.
    supervisor.watch("crasher", proc, proc.start)
    proc.start()
    supervisor.start()
    try:
        assert _wait(lambda: any("giving up" in line for line in lines), timeout=20)
        assert "code 3" in next(line for line in lines if "giving up" in line)
    finally:
        supervisor.stop()
