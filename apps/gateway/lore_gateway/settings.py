"""Settings of lore-gateway (environment variables, names are case-insensitive)."""

from __future__ import annotations

from limits import parse
from pydantic import Field, field_validator

from lore_core.settings import CommonSettings, DocumentLimitSettings


class Settings(CommonSettings, DocumentLimitSettings):
    app_id: str = "lore-gateway"
    bind_host: str = Field(default="127.0.0.1", description="Address the public API listens on.")
    query_app_id: str = "lore-query"
    ingest_app_id: str = "lore-ingest"
    max_body_bytes: int = Field(
        default=4_000_000,
        gt=0,
        description="Largest accepted request body (JSON escapes can triple the size of a text).",
    )
    # Authentication (lore_gateway.auth). Switching it off is for local experiments only: every
    # caller then acts as an admin of whichever tenant its request names.
    auth_required: bool = Field(default=True, description="Require an API key on every /v1 call.")
    key_store: str = Field(default="keystore", description="Dapr state store holding the API keys.")
    operator_key_secret: str = Field(
        default="lore-admin-key",
        description="Secret (in `secret_store`) holding the operator key; empty: no operator key.",
    )
    rate_limit: str = Field(
        default="600/minute",
        description="Calls allowed per API key (`limits` notation, e.g. `100/second`); empty: no limit.",
    )
    # Redis holds the rate-limit counters shared by every gateway replica.
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password_secret: str = "redis-password"

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if value:
            parse(value)
        return value
