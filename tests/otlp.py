"""A minimal OTLP/HTTP trace receiver: the apps' real exporter sends protobuf to it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    # Trace ids of the spans this one links to (an embedding batch links to every ingestion it serves).
    linked_traces: tuple[str, ...] = ()
    # The exporting SDK's `telemetry.sdk.language`: "python" for the apps; daprd's resource leaves
    # it out (empty here).
    language: str = ""


class OtlpCollector:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        lock = threading.Lock()
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with lock:
                    for resource_spans in request.resource_spans:
                        resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                        service = resource.get("service.name", "")
                        language = resource.get("telemetry.sdk.language", "")
                        for scope_spans in resource_spans.scope_spans:
                            for span in scope_spans.spans:
                                spans.append(
                                    ReceivedSpan(
                                        service,
                                        span.name,
                                        span.trace_id.hex(),
                                        span.span_id.hex(),
                                        span.parent_span_id.hex(),
                                        tuple(link.trace_id.hex() for link in span.links),
                                        language,
                                    )
                                )
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
