"""Settings of lore-gateway (environment variables, names are case-insensitive)."""

from __future__ import annotations

from pydantic import Field

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
