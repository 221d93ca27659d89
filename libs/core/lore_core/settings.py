"""Settings shared by every Lore app; each app's own `Settings` extends `CommonSettings`."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDERS = {"", "changeme", "change-me", "placeholder", "todo", "xxx"}


class CommonSettings(BaseSettings):
    """Values every app needs to reach its sidecar, Redis and the telemetry backend.

    Required values have no default: a missing one fails start-up with pydantic's message, which
    names the environment variable.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    app_id: str
    app_port: int = Field(default=8000, ge=1, le=65535)
    dapr_http_port: int = Field(default=3500, ge=1, le=65535)
    dapr_host: str = "127.0.0.1"
    # Sent as `dapr-api-token` on every call to the sidecar (daprd is started with the same value).
    dapr_api_token: SecretStr
    # The sidecar sends this as `dapr-api-token` on every call it makes to the app.
    app_api_token: SecretStr
    sidecar_wait_seconds: float = Field(default=60.0, gt=0)

    secret_store: str = "secretstore"

    otel_exporter_otlp_endpoint: str | None = None
    log_level: str = "INFO"

    @field_validator("dapr_api_token", "app_api_token")
    @classmethod
    def _not_placeholder(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is empty or still a placeholder; set a random token")
        return value

    @property
    def dapr_base_url(self) -> str:
        return f"http://{self.dapr_host}:{self.dapr_http_port}"


class IndexSettings(CommonSettings):
    """Settings of the apps that read or write the vector index (ingest, query)."""

    # Redis is reached directly (not through Dapr) for the vector index only.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Name of the secret (in `secret_store`) holding the Redis password; empty means no password.
    redis_password_secret: str = "redis-password"
    index_name: str = "lore-chunks"
    index_prefix: str = "lore:chunk:"
