from __future__ import annotations

import pytest
from pydantic import ValidationError

from lore_gateway.settings import Settings as GatewaySettings
from lore_ingest.settings import Settings as IngestSettings


def test_missing_token_fails_and_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAPR_API_TOKEN", raising=False)
    monkeypatch.setenv("APP_API_TOKEN", "a-real-token")
    with pytest.raises(ValidationError, match="dapr_api_token"):
        GatewaySettings()


def test_placeholder_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_API_TOKEN", "changeme")
    monkeypatch.setenv("APP_API_TOKEN", "a-real-token")
    with pytest.raises(ValidationError, match="placeholder"):
        IngestSettings()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_API_TOKEN", "t1")
    monkeypatch.setenv("APP_API_TOKEN", "t2")
    monkeypatch.setenv("DAPR_HTTP_PORT", "3999")
    monkeypatch.setenv("MAX_DOCUMENT_BYTES", "2048")
    settings = IngestSettings()
    assert settings.dapr_base_url == "http://127.0.0.1:3999"
    assert settings.max_document_bytes == 2048
    assert settings.app_id == "lore-ingest"
