"""A local single-node Apache Kafka (KRaft: broker and controller in one JVM), from Maven jars.

No registry ships a Kafka distribution, but the broker runs from its Maven Central artifacts:
`scripts/fetch-kafka.sh` puts them in `.cache/kafka/lib` (pinned by `tools/kafka/pom.xml`).
"""

from __future__ import annotations

import base64
import socket
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lore_stack.procs import Proc

ROOT = Path(__file__).resolve().parents[3]
LIB_DIR = ROOT / ".cache" / "kafka" / "lib"
LOG_CONFIG = ROOT / "tools" / "kafka" / "log4j2.properties"
FETCH_SCRIPT = ROOT / "scripts" / "fetch-kafka.sh"

# A 256 MB heap is plenty for a few topics on loopback (~314 MiB RSS); SerialGC avoids G1's
# background threads on a 2-core machine.
JVM_OPTS = ("-Xmx256m", "-XX:+UseSerialGC", "-Djava.awt.headless=true")

# ApiVersions (key 18) version 0: every Kafka version answers it, and a broker only answers
# requests once it has started request processing, which follows being unfenced by the controller.
_API_VERSIONS = 18


@dataclass
class KafkaBroker:
    """One Kafka process acting as broker and KRaft controller, listening on loopback only.

    The storage in ``data_dir`` is formatted on first start and reused afterwards, so a restarted
    stack keeps its topics and committed consumer offsets.

    Args:
        port: The client (PLAINTEXT) listener: the `brokers` address Dapr's pubsub.kafka uses.
        controller_port: The KRaft controller listener (only the broker itself talks to it).
        data_dir: Holds `server.properties` and the log directory.
        log: Where the broker's output goes.
        lib_dir: The Kafka jars (``scripts/fetch-kafka.sh``).
    """

    port: int
    controller_port: int
    data_dir: Path
    log: Path
    lib_dir: Path = LIB_DIR
    _proc: Proc | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def cluster_id(self) -> str:
        """The id written when the storage was formatted; stable for the life of ``data_dir``."""
        for line in (self.log_dir / "meta.properties").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        raise RuntimeError(f"no cluster.id in {self.log_dir / 'meta.properties'}")

    def properties(self) -> str:
        listeners = f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            # Dapr publishes to topics it has not declared (lore.documents, its dead-letter topic).
            "auto.create.topics.enable": "true",
            "num.partitions": "1",
            # One node: internal topics cannot have more replicas than that.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # 50 offsets partitions (the default) make the first consumer group wait for all of them.
            "offsets.topic.num.partitions": "4",
            # The default 3 s wait for more members only delays the single subscriber per group.
            "group.initial.rebalance.delay.ms": "0",
            # A document event (up to 512 kB of text, JSON-escaped, in a CloudEvent) can exceed
            # Kafka's 1 MB default; matches the gateway's 4 MB body limit.
            "message.max.bytes": "4194304",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _java(self, main: str, *args: str, heap: tuple[str, ...] = JVM_OPTS) -> list[str]:
        return [
            "java",
            *heap,
            f"-Dlog4j2.configurationFile={LOG_CONFIG}",
            "-cp",
            f"{self.lib_dir}/*",
            main,
            *args,
        ]

    def start(self, timeout: float = 60.0) -> None:
        """Formats the storage if it is new, starts the broker and waits until it answers requests."""
        if not any(self.lib_dir.glob("kafka_2.13-*.jar")):
            raise FileNotFoundError(f"Kafka jars not found in {self.lib_dir}; run {FETCH_SCRIPT}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        # Rewritten on every start: the ports may differ from the previous run's.
        config.write_text(self.properties())
        if not (self.log_dir / "meta.properties").exists():
            self._format(config)
        self._proc = Proc("kafka", self._java("kafka.Kafka", str(config)), log=self.log, cwd=self.data_dir)
        self._proc.start()
        self.wait_ready(timeout)

    def _format(self, config: Path) -> None:
        # `--standalone` makes this node the whole (dynamic) controller quorum, so nothing else
        # has to be declared; the cluster id is a Kafka Uuid, 16 random bytes in URL-safe base64.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        args = ["format", "-t", cluster_id, "-c", str(config), "--standalone"]
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", *args, heap=("-Xmx128m", "-XX:+UseSerialGC")),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"formatting Kafka storage failed:\n{done.stdout}{done.stderr}")

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self._proc is not None and not self._proc.running():
                raise RuntimeError(f"kafka exited with {self._proc.returncode()}:\n{self._proc.tail()}")
            try:
                if _answers_api_versions(self.port):
                    return
                last = "ApiVersions answered with an error"
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        raise TimeoutError(f"kafka on port {self.port} not ready after {timeout}s ({last}):\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return self._proc.tail(lines) if self._proc is not None else ""

    def running(self) -> bool:
        return self._proc is not None and self._proc.running()

    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the broker shuts down in order (flushes logs, closes the quorum), then exits."""
        if self._proc is not None:
            self._proc.stop(timeout)


def ensure_jars(lib_dir: Path = LIB_DIR) -> None:
    """Fetches the Kafka jars unless ``lib_dir`` holds them (the script returns at once if so)."""
    subprocess.run([str(FETCH_SCRIPT), str(lib_dir)], stdin=subprocess.DEVNULL, check=True)


def _answers_api_versions(port: int) -> bool:
    """Sends an ApiVersions request and reports whether the broker answered it without error."""
    client_id = b"lore-stack"
    correlation_id = 1
    request = struct.pack(">hhih", _API_VERSIONS, 0, correlation_id, len(client_id)) + client_id
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _read(conn, 4))
        answer_id, error_code = struct.unpack(">ih", _read(conn, size)[:6])
    return bool(answer_id == correlation_id and error_code == 0)


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        data += chunk
    return data
