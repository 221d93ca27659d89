"""Reads `dapr.yaml`, the Dapr CLI's multi-app run file, so `make run` and `dapr run -f .`
start the same apps with the same ports and settings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class AppSpec:
    app_id: str
    app_dir: Path
    command: tuple[str, ...]
    app_port: int
    dapr_http_port: int
    dapr_grpc_port: int
    metrics_port: int
    health_path: str = "/healthz"
    env: dict[str, str] = field(default_factory=dict)

    def with_ports(self, app: int, http: int, grpc: int, metrics: int) -> AppSpec:
        return replace(self, app_port=app, dapr_http_port=http, dapr_grpc_port=grpc, metrics_port=metrics)


@dataclass(frozen=True)
class RunFile:
    apps: tuple[AppSpec, ...]
    resources_paths: tuple[Path, ...]
    config_path: Path
    env: dict[str, str]
    log_level: str

    def app(self, app_id: str) -> AppSpec:
        return next(a for a in self.apps if a.app_id == app_id)


def load(path: Path) -> RunFile:
    """Parses the subset of the run-file schema Lore uses (`common` + `apps`)."""
    base = path.parent
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    common: dict[str, Any] = data.get("common", {})
    env = {str(k): str(v) for k, v in common.get("env", {}).items()}
    apps = []
    for item in data["apps"]:
        apps.append(
            AppSpec(
                app_id=item["appID"],
                app_dir=(base / item["appDirPath"]).resolve(),
                command=tuple(item["command"]),
                app_port=int(item["appPort"]),
                dapr_http_port=int(item["daprHTTPPort"]),
                dapr_grpc_port=int(item["daprGRPCPort"]),
                metrics_port=int(item["metricsPort"]),
                health_path=item.get("appHealthCheckPath", "/healthz"),
                env={str(k): str(v) for k, v in item.get("env", {}).items()},
            )
        )
    return RunFile(
        apps=tuple(apps),
        resources_paths=tuple((base / p).resolve() for p in common.get("resourcesPaths", ["components"])),
        config_path=(base / common["configFilePath"]).resolve(),
        env=env,
        log_level=str(common.get("daprdLogLevel", "warn")),
    )
