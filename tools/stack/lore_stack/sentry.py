"""Dapr's Sentry for a local stack: the certificate authority behind sidecar mTLS and app-id ACLs.

Every daprd of the stack asks Sentry for a workload certificate whose SPIFFE ID names its app-id
(`spiffe://<trust domain>/ns/<namespace>/<app-id>`); sidecars then talk to each other, and to
Placement and Scheduler, only over mTLS with those certificates. The callee's daprd reads the
caller's app-id from the peer certificate and applies the Configuration's `accessControl` to it
(dapr v1.18.1 pkg/acl/acl.go:144, `spiffe.FromGRPCContext`): without mTLS there is no identity,
and only `defaultAction` would apply.

In self-hosted mode Sentry uses its `insecure` validator: it signs a certificate for whichever
app-id a daprd asks for. Identity here therefore rests on who can reach Sentry (loopback) and
read the CA; on Kubernetes the control plane's Sentry validates the pod's service account.

On first start Sentry generates a self-signed root and issuer in ``credentials_dir``
(`ca.crt`, `issuer.crt`, `issuer.key`) and keeps them there, so a restart (or a later `make run`
on the same run directory) keeps the trust root the sidecars were started with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lore_stack.procs import Proc, answers, wait_until

# The control plane's trust domain and namespace: Sentry signs certificates in this trust domain,
# and daprd, Placement and Scheduler derive each other's expected SPIFFE IDs from them
# (`--control-plane-trust-domain`, `--control-plane-namespace`, env NAMESPACE).
TRUST_DOMAIN = "localhost"
NAMESPACE = "default"


@dataclass
class Sentry:
    """Dapr Sentry on loopback.

    Args:
        binary: The `sentry` binary (built next to daprd by `scripts/build-dapr.sh`).
        credentials_dir: Where the root and issuer certificates are generated and kept.
        config: A Dapr Configuration file; Sentry reads its `spec.mtls` (certificate TTL, clock skew).
        log: Log file.
        ports: ``(gRPC, healthz, metrics)``, all free.
    """

    binary: Path
    credentials_dir: Path
    config: Path
    log: Path
    ports: tuple[int, int, int]

    def __post_init__(self) -> None:
        port, health, metrics = self.ports
        self.address = f"127.0.0.1:{port}"
        self._health = health
        self.proc = Proc(
            "sentry",
            [
                str(self.binary),
                "--issuer-credentials",
                str(self.credentials_dir),
                "--trust-domain",
                TRUST_DOMAIN,
                "--config",
                str(self.config),
                "--port",
                str(port),
                "--listen-address",
                "127.0.0.1",
                "--healthz-port",
                str(health),
                "--healthz-listen-address",
                "127.0.0.1",
                "--metrics-port",
                str(metrics),
                "--metrics-listen-address",
                "127.0.0.1",
            ],
            log=self.log,
            cwd=self.credentials_dir,
            env={"NAMESPACE": NAMESPACE},
        )

    @property
    def ca_file(self) -> Path:
        """The root certificate (PEM): the trust anchors every sidecar and control-plane service needs."""
        return self.credentials_dir / "ca.crt"

    def trust_anchors(self) -> str:
        return self.ca_file.read_text()

    def start(self, timeout: float = 30.0) -> None:
        """Starts Sentry and waits until it is healthy and its root certificate exists."""
        if not self.binary.exists():
            raise FileNotFoundError(f"sentry not found at {self.binary}; run `make dapr` to build it")
        # Sentry watches this folder and refuses to start without it.
        self.credentials_dir.mkdir(parents=True, exist_ok=True)
        self.proc.start()
        self.wait(timeout)

    def wait(self, timeout: float) -> None:
        url = f"http://127.0.0.1:{self._health}/healthz"
        wait_until(self.proc, lambda: answers(url, 200) and self.ca_file.is_file(), timeout, interval=0.1)

    def stop(self) -> None:
        self.proc.stop()

    def daprd_args(self) -> list[str]:
        """The daprd flags that turn on mTLS with this Sentry."""
        return [
            "--enable-mtls",
            "--sentry-address",
            self.address,
            "--control-plane-trust-domain",
            TRUST_DOMAIN,
            "--control-plane-namespace",
            NAMESPACE,
        ]

    def daprd_env(self) -> dict[str, str]:
        """The environment a daprd needs next to `daprd_args`: the trust anchors (daprd reads
        `DAPR_TRUST_ANCHORS`, dapr v1.18.1 cmd/daprd/options/options.go:249) and its namespace,
        part of its SPIFFE ID."""
        return {"DAPR_TRUST_ANCHORS": self.trust_anchors(), "NAMESPACE": NAMESPACE}

    def control_plane_args(self) -> list[str]:
        """Placement and Scheduler flags for mTLS: a daprd with mTLS dials them with its
        certificate and expects theirs (dapr v1.18.1 pkg/actors/internal/placement/placement.go:100,
        pkg/scheduler/client/client.go:58)."""
        return [
            "--tls-enabled",
            "--sentry-address",
            self.address,
            "--trust-anchors-file",
            str(self.ca_file),
            "--trust-domain",
            TRUST_DOMAIN,
        ]
