"""Renders the Dapr resources of `components/` and `dapr/` for one local stack.

Only environment-specific values change (Redis address, secrets file, name-resolution database,
broker address), so a local stack, a test stack and the Helm chart all run the same definitions.

Another message broker is a variant of a resources folder: `components/brokers/<broker>/X.yaml`
is rendered in place of `components/X.yaml` (for Kafka, `pubsub.yaml`). Only the top level of a
folder is read, here as by daprd's `--resources-path`, so the variants stay out of a default run.

Other services of the user that may invoke lore-query and lore-ingest are added to the
Configuration's access control here (`trusted_app_ids`), each with a copy of the first policy (the
gateway's): the list belongs to a deployment, not to the committed file.

The address of an external service (the chat model's `HTTPEndpoint`) is set by copying the
resource folders with `with_endpoint_urls` and running the stack on the copies.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

BROKERS = "brokers"


def _set_metadata(doc: dict[str, Any], name: str, value: str) -> None:
    for item in doc.get("spec", {}).get("metadata", []) or []:
        if item.get("name") == name and "value" in item:
            item["value"] = value


def _metadata(doc: dict[str, Any], name: str) -> str | None:
    for item in doc.get("spec", {}).get("metadata", []) or []:
        if item.get("name") == name and "value" in item:
            return str(item["value"])
    return None


def actor_hosts(resources_dir: Path) -> frozenset[str] | None:
    """App-ids in the scope of a component with `actorStateStore: "true"` (the apps that host
    actors and workflows, whose daprd needs Placement and Scheduler).

    Returns:
        Those app-ids; an empty set when no such component exists; None when one is unscoped
        (every app).
    """
    hosts: set[str] = set()
    for path in sorted(resources_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "Component":
                continue
            if str(_metadata(doc, "actorStateStore")).lower() != "true":
                continue
            scopes = doc.get("scopes") or []
            if not scopes:
                return None
            hosts.update(str(s) for s in scopes)
    return frozenset(hosts)


def render(
    sources: tuple[Path, ...],
    config: Path,
    target: Path,
    *,
    redis_host: str,
    secrets_file: Path,
    nameresolution_db: Path,
    broker: str | None = None,
    broker_metadata: Mapping[str, str] | None = None,
    sqlite_dir: Path | None = None,
    trusted_app_ids: tuple[str, ...] = (),
    otlp_endpoint: str | None = None,
) -> tuple[Path, Path]:
    """Writes rendered resources to ``target/resources`` and the configuration to ``target/config.yaml``.

    Args:
        broker: Render the files of ``<source>/brokers/<broker>/`` in place of the same-named
            files of each source (None: the files as they are, Redis Streams).
        broker_metadata: Component metadata values to set in those replacement files (the
            broker's address, the consumer group).
        sqlite_dir: Where the database files of `state.sqlite` components go (their
            `connectionString` is a file name, made absolute here); None: left as written.
        trusted_app_ids: App-ids that get the access of the configuration's first access-control
            policy (the gateway's), for other services of the user.
        otlp_endpoint: The OTLP/HTTP collector the apps export to (``http://host:port``); the
            sidecars then export their own spans there too. None: daprd samples and propagates
            the trace context but exports nothing.

    Returns:
        (resources directory, configuration file)
    """
    if broker and not any((source / BROKERS / broker).is_dir() for source in sources):
        raise ValueError(f"no {BROKERS}/{broker}/ folder in {[str(s) for s in sources]}")
    out = target / "resources"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    for source in sources:
        for path in sorted(source.glob("*.yaml")):
            variant = source / BROKERS / (broker or "") / path.name
            replaced = bool(broker) and variant.is_file()
            docs = [d for d in yaml.safe_load_all((variant if replaced else path).read_text()) if d]
            kept = []
            for doc in docs:
                if doc.get("kind") == "Component":
                    _set_metadata(doc, "redisHost", redis_host)
                    _set_metadata(doc, "secretsFile", str(secrets_file))
                    if sqlite_dir is not None and doc.get("spec", {}).get("type") == "state.sqlite":
                        connection = _metadata(doc, "connectionString") or f"{doc['metadata']['name']}.db"
                        _set_metadata(doc, "connectionString", str(sqlite_dir / Path(connection).name))
                    for name, value in (broker_metadata or {}).items() if replaced else ():
                        _set_metadata(doc, name, value)
                if doc.get("kind") in {"Component", "Resiliency", "Subscription", "HTTPEndpoint"}:
                    kept.append(doc)
            if kept:
                # Named after the file it replaces: a variant is the same resource, configured differently.
                (out / f"{source.name}-{path.name}").write_text(yaml.safe_dump_all(kept, sort_keys=False))
    conf = yaml.safe_load(config.read_text())
    resolver = conf.get("spec", {}).get("nameResolution")
    if resolver and resolver.get("component") == "sqlite":
        resolver.setdefault("configuration", {})["connectionString"] = str(nameresolution_db)
    _trust(conf, trusted_app_ids)
    if otlp_endpoint:
        _export_traces(conf, otlp_endpoint)
    config_out = target / "config.yaml"
    config_out.write_text(yaml.safe_dump(conf, sort_keys=False))
    return out, config_out


def _export_traces(conf: dict[str, Any], endpoint: str) -> None:
    """Points daprd's OTLP exporter at ``endpoint``. daprd wants `host:port` without a scheme, and
    `isSecure: false` for plain HTTP (daprd v1.18.1 pkg/runtime/runtime.go:574-600, which posts to
    `/v1/traces` through otlptracehttp)."""
    url = urlparse(endpoint)
    if not url.hostname:
        raise ValueError(f"OTLP endpoint {endpoint!r} has no host")
    tracing = conf.setdefault("spec", {}).setdefault("tracing", {"samplingRate": "1"})
    tracing["otel"] = {
        "endpointAddress": f"{url.hostname}:{url.port or (443 if url.scheme == 'https' else 80)}",
        "isSecure": url.scheme == "https",
        "protocol": "http",
    }


def _trust(conf: dict[str, Any], app_ids: tuple[str, ...]) -> None:
    """Adds a copy of the first access-control policy for each of ``app_ids``."""
    if not app_ids:
        return
    policies = conf.get("spec", {}).get("accessControl", {}).get("policies") or []
    if not policies:
        raise ValueError("trusted app-ids need an accessControl policy to copy in the configuration")
    known = {p["appId"] for p in policies}
    for app_id in app_ids:
        if app_id not in known:
            policies.append({**copy.deepcopy(policies[0]), "appId": app_id})
            known.add(app_id)


def with_endpoint_urls(sources: tuple[Path, ...], target: Path, urls: Mapping[str, str]) -> tuple[Path, ...]:
    """Copies the top level of each resources folder to ``target/<folder name>``, with the
    `spec.baseUrl` of the named HTTPEndpoints replaced.

    Args:
        urls: HTTPEndpoint name -> base URL (e.g. ``{"lore-llm": "http://127.0.0.1:8088"}``).

    Returns:
        The copied folders, in the order of ``sources`` (for `RunFile.resources_paths`).
    """
    copies = []
    for source in sources:
        copy = target / source.name
        copy.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.glob("*.yaml")):
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
            for doc in docs:
                name = doc.get("metadata", {}).get("name")
                if doc.get("kind") == "HTTPEndpoint" and name in urls:
                    doc["spec"]["baseUrl"] = urls[name]
            (copy / path.name).write_text(yaml.safe_dump_all(docs, sort_keys=False))
        copies.append(copy)
    return tuple(copies)
