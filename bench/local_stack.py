"""A whole local Lore stack for a benchmark: Redis, the sidecars and the apps, on free ports.

Authentication and rate limits are off: a benchmark measures ingestion, its callers name their
tenants in bodies without keys, and bursts must not meet the per-key rate limit.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lore_stack import runfile
from lore_stack.stack import Stack, free_port

ROOT = Path(__file__).resolve().parents[1]
DAPRD = ROOT / ".cache" / "dapr" / "bin" / "daprd"


@contextmanager
def local_stack(daprd: Path, env: dict[str, str] | None = None, timeout: float = 240) -> Iterator[Stack]:
    """Starts the stack of `dapr.yaml` with every port free-picked; stops it on the way out.

    Args:
        daprd: The daprd binary.
        env: Extra settings for every app (on top of auth and rate limits off).
        timeout: Seconds to wait for every app to be healthy.
    """
    spec = runfile.load(ROOT / "dapr.yaml")
    spec = dataclasses.replace(
        spec, apps=tuple(a.with_ports(free_port(), free_port(), free_port(), free_port()) for a in spec.apps)
    )
    with tempfile.TemporaryDirectory(prefix="lore-bench-") as tmp:
        run_dir = Path(tmp)
        stack = Stack(
            runfile=spec,
            run_dir=run_dir,
            daprd=daprd,
            secrets_file=run_dir / "secrets.json",
            redis_port=free_port(),
            llm_port=free_port(),  # used when ANSWER_PROVIDER=local starts the llama.cpp server
            env={"AUTH_REQUIRED": "false", "RATE_LIMIT": "", **(env or {})},
        )
        stack.start(timeout=timeout)
        try:
            yield stack
        finally:
            stack.stop()
