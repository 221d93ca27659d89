"""Renders the Dapr resources of `components/` and `dapr/` for one local stack.

Only environment-specific values change (Redis address, secrets file, name-resolution database),
so a local stack, a test stack and the Helm chart all run the same definitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def _set_metadata(doc: dict[str, Any], name: str, value: str) -> None:
    for item in doc.get("spec", {}).get("metadata", []) or []:
        if item.get("name") == name and "value" in item:
            item["value"] = value


def render(
    sources: tuple[Path, ...],
    config: Path,
    target: Path,
    *,
    redis_host: str,
    secrets_file: Path,
    nameresolution_db: Path,
) -> tuple[Path, Path]:
    """Writes rendered resources to ``target/resources`` and the configuration to ``target/config.yaml``.

    Returns:
        (resources directory, configuration file)
    """
    out = target / "resources"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    for source in sources:
        for path in sorted(source.glob("*.yaml")):
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
            kept = []
            for doc in docs:
                if doc.get("kind") == "Component":
                    _set_metadata(doc, "redisHost", redis_host)
                    _set_metadata(doc, "secretsFile", str(secrets_file))
                if doc.get("kind") in {"Component", "Resiliency", "Subscription", "HTTPEndpoint"}:
                    kept.append(doc)
            if kept:
                (out / f"{source.name}-{path.name}").write_text(yaml.safe_dump_all(kept, sort_keys=False))
    conf = yaml.safe_load(config.read_text())
    resolver = conf.get("spec", {}).get("nameResolution")
    if resolver and resolver.get("component") == "sqlite":
        resolver.setdefault("configuration", {})["connectionString"] = str(nameresolution_db)
    config_out = target / "config.yaml"
    config_out.write_text(yaml.safe_dump(conf, sort_keys=False))
    return out, config_out
