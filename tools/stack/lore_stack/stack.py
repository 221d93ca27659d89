"""A whole local Lore: Redis, and for each app in `dapr.yaml` its daprd sidecar and its process.

Used by `make run` (fixed ports from `dapr.yaml`) and by the integration tests (free ports, a
temporary run directory, one stack per test session).
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import httpx

from lore_stack import resources
from lore_stack.control_plane import ControlPlane
from lore_stack.kafka import KafkaBroker
from lore_stack.llm_server import LlmServer, point_endpoint
from lore_stack.procs import Proc, answers, wait_until
from lore_stack.redis_server import RedisServer
from lore_stack.runfile import AppSpec, RunFile
from lore_stack.secrets import ensure_secrets
from lore_stack.sentry import Sentry
from lore_stack.supervisor import Supervisor

_GIVEN: set[int] = set()


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, never handed out twice.

    Ports from `bind(0)` come from the ephemeral range, where outgoing connections can take them
    again before a daprd or app binds them.
    """
    rng = random.Random()
    while True:
        port = rng.randint(20000, 32000)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class AppProcesses:
    spec: AppSpec
    daprd: Proc
    app: Proc

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.spec.dapr_http_port}"

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.spec.app_port}"


@dataclass
class GuestSidecar:
    """A daprd of a service outside the stack (`Stack.guest_sidecar`)."""

    proc: Proc
    http_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60) -> None:
        """Starts daprd and waits until its outbound side (components, name resolution) is ready."""
        self.proc.start()
        wait_until(self.proc, lambda: answers(f"{self.url}/v1.0/healthz/outbound", 204), timeout)

    def stop(self) -> None:
        self.proc.stop()


@dataclass
class Stack:
    """Starts and stops every process of a local Lore.

    Args:
        runfile: The parsed `dapr.yaml`.
        run_dir: Where logs, rendered resources, Redis data and the name-resolution db live.
        daprd: Path of the daprd binary.
        secrets_file: The local secret store file (created with random values when missing).
        redis_url: Use this Redis instead of starting one (no password in the URL; the password
            is the `redis-password` secret).
        redis_port: Port of the Redis this stack starts (when ``redis_url`` is None).
        env: Extra environment for every app (settings overrides in tests).
        broker: The message broker behind the `pubsub` component: Redis Streams (the Redis above)
            or a Kafka broker this stack starts (`components/brokers/kafka/pubsub.yaml`).
        kafka_port: Client port of that Kafka broker (not Kafka's usual 9092: `dapr.yaml` gives it
            to a sidecar's metrics).
        trusted_app_ids: App-ids of other services of the user that may invoke lore-query and
            lore-ingest (like the gateway): added to the access control of the rendered
            Configuration and to the apps' `TRUSTED_APP_IDS`.
    """

    runfile: RunFile
    run_dir: Path
    daprd: Path
    secrets_file: Path
    redis_url: str | None = None
    redis_port: int = 6379
    env: dict[str, str] = field(default_factory=dict)
    broker: Literal["redis", "kafka"] = "redis"
    kafka_port: int = 19092
    trusted_app_ids: tuple[str, ...] = ()
    # The local model server, started when lore-query's ANSWER_PROVIDER is `local`; the
    # `lore-llm` HTTPEndpoint is pointed at it (components/llm.yaml names 8088, `make run`'s port).
    llm_port: int = 8088
    llm: LlmServer | None = field(default=None, init=False)
    redis: RedisServer | None = field(default=None, init=False)
    kafka: KafkaBroker | None = field(default=None, init=False)
    # Placement and Scheduler, started when a component makes some app an actor host (the
    # workflow state store, components/workflowstore.yaml).
    control_plane: ControlPlane | None = field(default=None, init=False)
    # Dapr's certificate authority: every daprd of the stack (and Placement and Scheduler) uses mTLS
    # with its certificates, which gives the Configuration's access control its caller identities.
    sentry: Sentry | None = field(default=None, init=False)
    actor_hosts: frozenset[str] | None = field(default=frozenset(), init=False)
    apps: dict[str, AppProcesses] = field(default_factory=dict, init=False)
    secrets: dict[str, str] = field(default_factory=dict, init=False)
    # Restart any process that dies (see lore_stack.supervisor); `say` reports it.
    supervise: bool = False
    say: Callable[[str], None] = print
    supervisor: Supervisor | None = field(default=None, init=False)

    def start(self, timeout: float = 120.0) -> None:
        """Starts Redis and every app with its sidecar, and waits until the gateway is ready."""
        self.daprd = self.daprd.resolve()
        if not self.daprd.exists():
            raise FileNotFoundError(f"daprd not found at {self.daprd}; run `make dapr` to build it")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.secrets = ensure_secrets(self.secrets_file)
        if self.redis_url is None:
            if port_in_use(self.redis_port):
                raise RuntimeError(f"port {self.redis_port} is taken; set REDIS_PORT or REDIS_URL")
            self.redis = RedisServer(
                port=self.redis_port, data_dir=self.run_dir / "redis", password=self.secrets["redis-password"]
            )
            self.redis.start()
            self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        broker_metadata = self._start_kafka() if self.broker == "kafka" else None
        parsed = urlparse(self.redis_url)
        self.resources_dir, self.config_file = resources.render(
            self.runfile.resources_paths,
            self.runfile.config_path,
            self.run_dir,
            redis_host=f"{parsed.hostname}:{parsed.port or 6379}",
            secrets_file=self.secrets_file.resolve(),
            nameresolution_db=(self.run_dir / "nameresolution.db").resolve(),
            broker=None if self.broker == "redis" else self.broker,
            broker_metadata=broker_metadata,
            sqlite_dir=self.run_dir.resolve(),
            trusted_app_ids=self.trusted_app_ids,
            otlp_endpoint=self.env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or self.runfile.env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        )
        self.sentry = Sentry(
            binary=self.daprd.parent / "sentry",
            credentials_dir=self.run_dir / "sentry",
            config=self.config_file,
            log=self.run_dir / "logs" / "sentry.log",
            ports=(free_port(), free_port(), free_port()),
        )
        self.sentry.start()
        if self._query_env().get("ANSWER_PROVIDER", "").lower() == "local":
            self._start_llm()
        self.actor_hosts = resources.actor_hosts(self.resources_dir)
        if self.actor_hosts is None or self.actor_hosts:
            self.control_plane = ControlPlane(
                bin_dir=self.daprd.parent,
                data_dir=self.run_dir / "control-plane",
                logs=self.run_dir / "logs",
                ports=(
                    free_port(),
                    free_port(),
                    free_port(),
                    free_port(),
                    free_port(),
                    free_port(),
                    free_port(),
                    free_port(),
                    free_port(),
                ),
                sentry=self.sentry,
            )
            self.control_plane.start()
        for spec in self.runfile.apps:
            self.apps[spec.app_id] = self._sidecar(spec)
        for app_id in self.apps:
            self.start_app(app_id)
        deadline = time.monotonic() + timeout
        for app_id in self.apps:
            self.wait_app(app_id, deadline - time.monotonic())
        if self.supervise:
            self._start_supervisor()

    def _start_supervisor(self) -> None:
        supervisor = Supervisor(self.say)
        if self.redis is not None:
            redis = self.redis
            supervisor.watch("redis", redis, lambda: redis.start())
        if self.kafka is not None:
            kafka = self.kafka
            supervisor.watch("kafka", kafka, lambda: kafka.start())
        if self.llm is not None:
            llm = self.llm
            supervisor.watch("llm-server", llm, lambda: llm.start())
        if self.sentry is not None:
            supervisor.watch("sentry", self.sentry.proc, self.sentry.proc.start)
        if self.control_plane is not None:
            for proc in (self.control_plane.placement, self.control_plane.scheduler):
                supervisor.watch(proc.name, proc, proc.start)
        for processes in self.apps.values():
            for proc in (processes.daprd, processes.app):
                supervisor.watch(proc.name, proc, proc.start)
        supervisor.start()
        self.supervisor = supervisor

    def _query_env(self) -> dict[str, str]:
        """lore-query's environment as `_sidecar` composes it (run file, app, stack overrides)."""
        spec = next((a for a in self.runfile.apps if a.app_id == "lore-query"), None)
        return {**self.runfile.env, **(spec.env if spec else {}), **self.env}

    def _start_llm(self) -> None:
        """Starts the local model server; points lore-query's chat HTTPEndpoint (rendered) at it."""
        if port_in_use(self.llm_port):
            raise RuntimeError(f"port {self.llm_port} is taken; set LLM_PORT")
        self.llm = LlmServer(port=self.llm_port, log=self.run_dir / "logs" / "llm-server.log")
        self.llm.start()
        endpoint = self._query_env().get("LLM_ENDPOINT", "lore-llm")
        point_endpoint(self.resources_dir, endpoint, self.llm.base_url)
        self.env.setdefault("LLM_MODEL", self.llm.alias)

    def _start_kafka(self) -> dict[str, str]:
        """Starts the Kafka broker; returns the `pubsub` component metadata that points at it."""
        if port_in_use(self.kafka_port):
            raise RuntimeError(f"port {self.kafka_port} is taken; set KAFKA_PORT")
        self.kafka = KafkaBroker(
            port=self.kafka_port,
            controller_port=free_port(),
            data_dir=self.run_dir / "kafka",
            log=self.run_dir / "logs" / "kafka.log",
        )
        self.kafka.start()
        # Consumer groups named after the broker's storage: new with every new log (each test
        # stack), kept across restarts on the same log, so `initialOffset: oldest` never replays
        # events another run already consumed. Dapr substitutes {appID}.
        return {"brokers": self.kafka.bootstrap, "consumerGroup": f"{{appID}}-{self.kafka.cluster_id}"}

    def _sidecar(self, spec: AppSpec) -> AppProcesses:
        logs = self.run_dir / "logs"
        token_env = {
            "DAPR_API_TOKEN": self.secrets["dapr-api-token"],
            "APP_API_TOKEN": self.secrets["app-api-token"],
        }
        daprd = Proc(
            f"daprd-{spec.app_id}",
            [
                *self.daprd_command(
                    spec.app_id,
                    http_port=spec.dapr_http_port,
                    grpc_port=spec.dapr_grpc_port,
                    metrics_port=spec.metrics_port,
                    resources_dir=self.resources_dir,
                    app_port=spec.app_port,
                    log_level=self.runfile.log_level,
                ),
                "--enable-app-health-check",
                "--app-health-check-path",
                spec.health_path,
                "--app-health-probe-interval",
                "2",
                # daprd wants the probe timeout below the interval. A dead app refuses connections
                # at once; the longer timeout keeps a busy but healthy app (a loaded CPU: slow
                # /healthz answers) from being marked unhealthy, which would cancel its
                # subscription and refuse invocations for a while.
                "--app-health-probe-timeout",
                "1500",
                "--app-health-threshold",
                "3",
                *self._actor_flags(spec.app_id),
            ],
            log=logs / f"daprd-{spec.app_id}.log",
            cwd=self.run_dir,
            env={**token_env, **self.mtls_env()},
        )
        app = Proc(
            spec.app_id,
            list(spec.command),
            log=logs / f"{spec.app_id}.log",
            cwd=spec.app_dir,
            env={
                **self.runfile.env,
                **spec.env,
                **token_env,
                "APP_ID": spec.app_id,
                "APP_PORT": str(spec.app_port),
                "DAPR_HTTP_PORT": str(spec.dapr_http_port),
                "DAPR_GRPC_PORT": str(spec.dapr_grpc_port),
                "REDIS_URL": self.redis_url or "",
                # lore_core.callers.CallerSettings: the callers lore-query and lore-ingest trust.
                "TRUSTED_APP_IDS": json.dumps(list(self.trusted_app_ids)),
                **self.env,
            },
        )
        return AppProcesses(spec=spec, daprd=daprd, app=app)

    def daprd_command(
        self,
        app_id: str,
        *,
        http_port: int,
        grpc_port: int,
        metrics_port: int,
        resources_dir: Path,
        app_port: int | None = None,
        log_level: str = "info",
        mtls: bool = True,
    ) -> list[str]:
        """The argv of a daprd on this stack's Configuration, name resolution and (with ``mtls``)
        Sentry: the stack's own sidecars and any guest (`guest_sidecar`) are started alike."""
        app = (
            ["--app-port", str(app_port), "--app-protocol", "http", "--app-channel-address", "127.0.0.1"]
            if app_port is not None
            else []
        )
        return [
            str(self.daprd),
            "--app-id",
            app_id,
            *app,
            "--dapr-http-port",
            str(http_port),
            "--dapr-grpc-port",
            str(grpc_port),
            "--dapr-internal-grpc-port",
            str(free_port()),
            "--dapr-listen-addresses",
            "127.0.0.1",
            "--metrics-port",
            str(metrics_port),
            "--resources-path",
            str(resources_dir),
            "--config",
            str(self.config_file),
            "--log-level",
            log_level,
            *(self.mtls_args() if mtls else []),
        ]

    def guest_sidecar(
        self,
        app_id: str,
        run_dir: Path,
        resources_dir: Path,
        *,
        app_port: int | None = None,
        mtls: bool = True,
    ) -> GuestSidecar:
        """A daprd (not started) for another service of the user's that calls into the stack or
        subscribes to it: its own components in ``resources_dir``, the stack's Configuration and
        name resolution, and (with ``mtls``) a certificate from the stack's Sentry."""
        http_port = free_port()
        proc = Proc(
            f"daprd-{app_id}",
            self.daprd_command(
                app_id,
                http_port=http_port,
                grpc_port=free_port(),
                metrics_port=free_port(),
                resources_dir=resources_dir,
                app_port=app_port,
                mtls=mtls,
            ),
            log=run_dir / f"daprd-{app_id}.log",
            cwd=run_dir,
            env={
                "DAPR_API_TOKEN": self.secrets["dapr-api-token"],
                "APP_API_TOKEN": self.secrets["app-api-token"],
                **(self.mtls_env() if mtls else {}),
            },
        )
        return GuestSidecar(proc=proc, http_port=http_port)

    def mtls_args(self) -> list[str]:
        """daprd flags for mTLS with this stack's Sentry; any other daprd that should talk to the
        stack's sidecars (a test's client sidecar) needs them, and `mtls_env`, too."""
        return [] if self.sentry is None else self.sentry.daprd_args()

    def mtls_env(self) -> dict[str, str]:
        return {} if self.sentry is None else self.sentry.daprd_env()

    def _actor_flags(self, app_id: str) -> list[str]:
        """Placement and Scheduler addresses for an app that hosts actors (workflows)."""
        hosts = self.actor_hosts
        if self.control_plane is None or (hosts is not None and app_id not in hosts):
            return []
        return [
            "--placement-host-address",
            self.control_plane.placement_address,
            "--scheduler-host-address",
            self.control_plane.scheduler_address,
        ]

    def start_app(self, app_id: str) -> None:
        sidecar = self.apps[app_id]
        sidecar.daprd.start()
        sidecar.app.start()
        if self.supervisor is not None:
            self.supervisor.resume(sidecar.daprd.name)
            self.supervisor.resume(sidecar.app.name)

    def wait_app(self, app_id: str, timeout: float) -> None:
        """Waits until the app answers `/readyz` and its sidecar reports healthy."""
        sidecar = self.apps[app_id]
        deadline = time.monotonic() + max(timeout, 1.0)
        last = "not started"
        while time.monotonic() < deadline:
            for proc in (sidecar.daprd, sidecar.app):
                if not proc.running():
                    raise RuntimeError(f"{proc.name} exited with {proc.returncode()}:\n{proc.tail()}")
            try:
                ready = httpx.get(f"{sidecar.app_url}/readyz", timeout=2)
                dapr = httpx.get(f"{sidecar.http}/v1.0/healthz", timeout=2)
                if ready.status_code == 200 and dapr.status_code == 204:
                    return
                last = f"readyz {ready.status_code} {ready.text[:200]}, daprd {dapr.status_code}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.25)
        raise TimeoutError(
            f"{app_id} not ready: {last}\n--- app log\n{sidecar.app.tail()}"
            f"\n--- daprd log\n{sidecar.daprd.tail()}"
        )

    def stop_app(self, app_id: str) -> None:
        sidecar = self.apps[app_id]
        if self.supervisor is not None:
            self.supervisor.pause(sidecar.daprd.name)
            self.supervisor.pause(sidecar.app.name)
        sidecar.app.stop()
        sidecar.daprd.stop()

    def stop(self) -> None:
        """Stops every process this stack started, apps first, Redis last."""
        if self.supervisor is not None:
            self.supervisor.stop()
        for app_id in reversed(list(self.apps)):
            self.stop_app(app_id)
        if self.control_plane is not None:
            self.control_plane.stop()
        if self.sentry is not None:
            self.sentry.stop()
        if self.llm is not None:
            self.llm.stop()
        if self.kafka is not None:
            self.kafka.stop()
        if self.redis is not None:
            self.redis.stop()

    def url(self, app_id: str) -> str:
        return self.apps[app_id].app_url
