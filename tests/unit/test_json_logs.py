"""`LOG_FORMAT=json`: one JSON object per line, joined to the trace that was current."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError

from lore_core.settings import CommonSettings
from lore_core.telemetry import TraceJsonFormatter, configure_logging


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the JSON formatter into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(TraceJsonFormatter())
    logger = logging.getLogger("lore.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)


def _records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_record_is_one_json_object_with_time_level_logger_and_message(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = lines
    # uvicorn's `color_message` (the message with terminal colour codes) is left out.
    logger.warning("document %s refused", "d-1", extra={"document_id": "d-1", "color_message": "\x1b[36m"})

    [record] = _records(buffer)
    assert record["level"] == "WARNING"
    assert record["logger"] == "lore.test.json"
    assert record["message"] == "document d-1 refused"
    assert record["document_id"] == "d-1"
    assert datetime.fromisoformat(record["time"]).utcoffset() is not None
    assert "trace_id" not in record and "span_id" not in record and "color_message" not in record


def test_record_carries_ids_of_the_current_span(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = lines
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("ingest") as span:
        logger.info("embedding")
    logger.info("after the span")

    inside, after = _records(buffer)
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in after


def test_multiline_message_stays_on_one_line(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = lines
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed\nbadly")

    [record] = _records(buffer)
    assert record["message"] == "failed\nbadly"
    assert "RuntimeError: boom" in record["exc_info"]


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root")
@pytest.mark.parametrize(
    ("log_format", "formatter"), [("json", TraceJsonFormatter), ("text", logging.Formatter)]
)
def test_configure_logging_installs_one_root_handler_in_the_format(
    log_format: Any, formatter: type[logging.Formatter]
) -> None:
    configure_logging("DEBUG", log_format)

    root = logging.getLogger()
    [handler] = root.handlers
    assert type(handler.formatter) is formatter
    assert root.level == logging.DEBUG


def _settings() -> CommonSettings:
    return CommonSettings(app_id="lore-test", dapr_api_token="t0ken-a", app_api_token="t0ken-b")


def test_log_format_is_text_unless_set_to_json(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().log_format == "text"
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert _settings().log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        _settings()
