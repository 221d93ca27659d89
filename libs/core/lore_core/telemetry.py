"""Prometheus metrics and OpenTelemetry traces for a Lore FastAPI app.

Traces: FastAPI server spans continue an incoming W3C `traceparent`; the sidecar clients (HTTP for
invocation, the Dapr SDK's gRPC for pub/sub and state) are instrumented too, so the context travels
gateway -> daprd -> daprd -> query, and from a publish through the broker to the subscriber (daprd
keeps it in the CloudEvent's `traceparent`): one question, or one ingestion event from publish to
indexed, is one trace. Redis commands, embedding batches and index writes are spans of it. Spans
are exported over OTLP/HTTP only when an endpoint is configured.

Logs: plain text by default; with `LOG_FORMAT=json` one JSON object per line carrying the ids of
the span current when the record was made, so a log line leads to its trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Request, Response
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

_UNTRACED = "healthz,readyz,metrics"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class TraceJsonFormatter(JsonFormatter):
    """One JSON object per record: `time` (ISO 8601, UTC), `level`, `logger`, `message`, any
    `extra` fields, and `trace_id`/`span_id` (W3C hex) when a valid span is current."""

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            # uvicorn adds `color_message`, the message again with terminal colour codes.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        # Formatting runs in the thread that logged (StreamHandler), so the current span is the
        # one the record belongs to.
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            log_data["trace_id"] = trace.format_trace_id(context.trace_id)
            log_data["span_id"] = trace.format_span_id(context.span_id)


def configure_logging(level: str, log_format: Literal["text", "json"]) -> None:
    """Sets the root logger's one handler to stderr in ``log_format`` at ``level``."""
    handler = logging.StreamHandler()
    handler.setFormatter(TraceJsonFormatter() if log_format == "json" else logging.Formatter(_TEXT_FORMAT))
    # force: replace handlers installed earlier (an import, a test runner) rather than doubling lines.
    logging.basicConfig(level=level, handlers=[handler], force=True)


def tracer_provider(service_name: str, otlp_endpoint: str | None) -> TracerProvider:
    """A provider for one app; kept per app (not global) so tests can run several apps per process."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    return provider


def trace_process(provider: TracerProvider) -> None:
    """Makes ``provider`` the process's: module-level tracers and every Redis client use it."""
    trace.set_tracer_provider(provider)
    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def instrument(
    app: FastAPI, provider: TracerProvider, *, clients: tuple[httpx.AsyncClient, ...] = ()
) -> None:
    """Adds `/metrics`, request metrics and tracing to ``app`` and its outgoing ``clients``."""
    registry = CollectorRegistry()
    requests = Counter(
        "lore_http_requests", "HTTP requests served", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "lore_http_request_duration_seconds",
        "Time to first response byte",
        ["method", "route"],
        registry=registry,
    )

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        latency.labels(request.method, template).observe(time.perf_counter() - started)
        requests.labels(request.method, template, str(response.status_code)).inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        # The app's request metrics, then the process-wide registry: domain metrics that modules
        # declare once at import (ingestion outcomes, embedding batches) and process metrics.
        body = generate_latest(registry) + generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=_UNTRACED)
    for client in clients:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)
