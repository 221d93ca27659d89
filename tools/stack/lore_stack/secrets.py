"""The local secrets file read by the `secretstore` component (`secretstores.local.file`)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

# `lore-admin-key`: the gateway's operator API key (lore_gateway.auth); `make run` prints it.
NAMES = ("dapr-api-token", "app-api-token", "redis-password", "lore-admin-key")


def ensure_secrets(path: Path) -> dict[str, str]:
    """Reads ``path``, adding a random value for each missing name; the file is mode 0600."""
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in NAMES if not values.get(n)]
    if missing:
        for name in missing:
            values[name] = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2) + "\n")
        path.chmod(0o600)
    return values
