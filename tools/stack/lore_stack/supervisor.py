"""Restarts whatever a local stack started when it dies: apps, sidecars, Redis.

`make run` is meant to be left running; before this, a `kill -9` of lore-ingest went unnoticed
while ingestion events piled up. The supervisor polls every process once a second, restarts one
that exited with exponential back-off (1 s doubling to 30 s), says so on the terminal, and gives
up loudly on a process that died `max_restarts` times within `window` seconds, leaving the rest
of the stack serving (the gateway's `/readyz` names what is missing).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Supervised(Protocol):
    def running(self) -> bool: ...
    def returncode(self) -> int | None: ...


@dataclass
class _Watch:
    name: str
    proc: Supervised
    restart: Callable[[], None]
    deaths: deque[float] = field(default_factory=deque)
    next_try: float = 0.0
    backoff: float = 1.0
    given_up: bool = False
    down_since: float | None = None


class Supervisor:
    """Watches processes in a background thread and restarts the ones that die.

    Args:
        say: Where to report restarts and give-ups (the terminal under `make run`).
        max_restarts: Deaths within ``window`` seconds after which a process is given up.
        window: See ``max_restarts``.
        interval: Seconds between checks.
    """

    def __init__(
        self,
        say: Callable[[str], None],
        *,
        max_restarts: int = 5,
        window: float = 120.0,
        interval: float = 1.0,
    ) -> None:
        self._say = say
        self._max = max_restarts
        self._window = window
        self._interval = interval
        self._watches: list[_Watch] = []
        self._paused: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts: dict[str, int] = {}

    def watch(self, name: str, proc: Supervised, restart: Callable[[], None]) -> None:
        with self._lock:
            self._watches.append(_Watch(name, proc, restart))
            self.restarts.setdefault(name, 0)

    def pause(self, name: str) -> None:
        """Stops watching ``name`` (it is being stopped on purpose) until `resume`."""
        with self._lock:
            self._paused.add(name)

    def resume(self, name: str) -> None:
        with self._lock:
            self._paused.discard(name)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lore-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                watches = [w for w in self._watches if w.name not in self._paused and not w.given_up]
            for watch in watches:
                if self._stop.is_set():
                    return
                self._check(watch)

    def _check(self, watch: _Watch) -> None:
        now = time.monotonic()
        if watch.proc.running():
            if watch.down_since is None and now - watch.next_try > 60:
                watch.backoff = 1.0  # a minute up: the next death starts the back-off afresh
            return
        if watch.down_since is None:
            watch.down_since = now
            watch.deaths.append(now)
            while watch.deaths and now - watch.deaths[0] > self._window:
                watch.deaths.popleft()
            if len(watch.deaths) > self._max:
                watch.given_up = True
                self._say(
                    f"!!! {watch.name} died {len(watch.deaths)} times in {self._window:.0f}s "
                    f"(last exit code {watch.proc.returncode()}); giving up on it. See .run/logs."
                )
                return
            watch.next_try = now + watch.backoff
            self._say(
                f"{watch.name} exited with code {watch.proc.returncode()}; restarting in {watch.backoff:.0f}s"
            )
            watch.backoff = min(watch.backoff * 2, 30.0)
        if now < watch.next_try:
            return
        try:
            watch.restart()
        except Exception as exc:  # a failed start is one more death
            self._say(f"{watch.name} failed to restart: {exc}")
            watch.down_since = None
            watch.next_try = time.monotonic()
            return
        watch.down_since = None
        watch.next_try = time.monotonic()
        self.restarts[watch.name] += 1
        self._say(f"{watch.name} restarted")
