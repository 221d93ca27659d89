"""Dapr's Placement and Scheduler services for a local stack: what actors and workflows run on.

Dapr Workflow runs on actors. An actor host (a daprd with `--placement-host-address`) learns
from Placement which daprd owns which actor, and since Dapr 1.15 the workflow engine's timers and
reminders live in the Scheduler (`--scheduler-host-address`), which keeps them in an embedded
etcd under the run directory, so a pending workflow step survives a restart of any process. Both
binaries are built next to daprd (`scripts/build-dapr.sh`) and are started here on loopback, on
ports chosen by the caller. With a `Sentry` they serve mTLS: a daprd with mTLS dials them with its
workload certificate and checks theirs, so both sides must agree (`lore_stack.sentry`).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

from lore_stack.procs import Proc, answers, wait_until
from lore_stack.sentry import NAMESPACE, Sentry


@dataclass
class ControlPlane:
    """Placement and Scheduler on loopback.

    Args:
        bin_dir: Folder holding the `placement` and `scheduler` binaries (daprd's folder).
        data_dir: Where the Scheduler's etcd keeps its data (kept across restarts).
        logs: Folder of the two log files.
        ports: ``(placement, placement raft, placement healthz, scheduler, scheduler healthz,
            scheduler etcd client, scheduler etcd peer, metrics, metrics)``, all free.
        sentry: Serve mTLS with certificates from this Sentry (None: plain gRPC).
    """

    bin_dir: Path
    data_dir: Path
    logs: Path
    ports: tuple[int, int, int, int, int, int, int, int, int]
    sentry: Sentry | None = None

    def __post_init__(self) -> None:
        (placement, raft, placement_health, scheduler, scheduler_health, etcd, peer, m1, m2) = self.ports
        self.placement_address = f"127.0.0.1:{placement}"
        self.scheduler_address = f"127.0.0.1:{scheduler}"
        self._health = (placement_health, scheduler_health)
        loopback = ["--listen-address", "127.0.0.1", "--healthz-listen-address", "127.0.0.1"]
        mtls = self.sentry.control_plane_args() if self.sentry is not None else []
        # Their own SPIFFE IDs (`.../ns/<NAMESPACE>/dapr-placement`) must be the ones daprd expects.
        env = {"NAMESPACE": NAMESPACE} if self.sentry is not None else {}
        self.placement = Proc(
            "placement",
            [
                str(self.bin_dir / "placement"),
                "--port",
                str(placement),
                # A single-node raft cluster; its state (the actor table) is rebuilt from the
                # daprds' heartbeats after a restart, so it lives in memory.
                "--initial-cluster",
                f"dapr-placement-0=127.0.0.1:{raft}",
                "--healthz-port",
                str(placement_health),
                "--metrics-port",
                str(m1),
                "--metrics-listen-address",
                "127.0.0.1",
                *loopback,
                *mtls,
            ],
            log=self.logs / "placement.log",
            cwd=self.data_dir,
            env=env,
        )
        self.scheduler = Proc(
            "scheduler",
            [
                str(self.bin_dir / "scheduler"),
                "--port",
                str(scheduler),
                # The address daprds are told to connect to (otherwise the host name).
                "--override-broadcast-host-port",
                self.scheduler_address,
                "--etcd-data-dir",
                str(self.data_dir / "scheduler"),
                "--etcd-client-port",
                str(etcd),
                "--etcd-client-listen-address",
                "127.0.0.1",
                "--etcd-initial-cluster",
                f"dapr-scheduler-server-0=http://127.0.0.1:{peer}",
                "--healthz-port",
                str(scheduler_health),
                "--metrics-port",
                str(m2),
                "--metrics-listen-address",
                "127.0.0.1",
                *loopback,
                *mtls,
            ],
            log=self.logs / "scheduler.log",
            cwd=self.data_dir,
            env=env,
        )

    def start(self, timeout: float = 60.0) -> None:
        """Starts both services and waits until their health endpoints answer 200."""
        for binary in ("placement", "scheduler"):
            if not (self.bin_dir / binary).exists():
                raise FileNotFoundError(f"{binary} not found in {self.bin_dir}; run `make dapr` to build it")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.placement.start()
        self.scheduler.start()
        self.wait(timeout)

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc, port in zip((self.placement, self.scheduler), self._health, strict=True):
            url = f"http://127.0.0.1:{port}/healthz"
            wait_until(proc, functools.partial(answers, url, 200), deadline - time.monotonic())

    def stop(self) -> None:
        self.scheduler.stop()
        self.placement.stop()
