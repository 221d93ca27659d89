"""The gateway's view of the other Lore apps, reached only through Dapr service invocation.

Circuit breakers: Dapr counts every invocation answer outside 200-399 as a failure, and the
gateway's sidecar keeps one breaker per method path of lore-ingest and lore-query
(`dapr/resiliency.yaml`, breaker `app`) for all of the gateway's clients at once. So no client may
be able to make lore-ingest or lore-query answer non-2xx on purpose:

- the gateway validates everything it can before invoking (body, path patterns, document size:
  `lore_gateway.routes.v1`), so lore-ingest and lore-query see only valid requests;
- an outcome only the callee can know (a document that does not exist) comes back as HTTP 200 with
  a `Refusal` body (`{"outcome": "refused", "error", "detail", "status"}`), which `_upstream` turns
  into the public status and `{"error", "detail"}` body;
- real failures stay 5xx and count, so the breaker still sheds load from a sick callee.

Every call names the tenant it acts for, the one of the caller's API key, in the `lore-tenant`
header; the callee trusts it because Dapr's access control and `dapr-caller-app-id` say the call
came from the gateway (lore_core.callers).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx

from lore_core.callers import TENANT_HEADER
from lore_core.contracts import (
    Answer,
    AnswerIn,
    DocumentDeleted,
    DocumentIn,
    DocumentStatus,
    FilesIngested,
    JobIn,
    JobList,
    JobStatus,
    Outcome,
    QuestionIn,
    Refusal,
    Retrieved,
    RetrieveIn,
)
from lore_core.dapr import DaprError, Sidecar
from lore_core.http import ApiError

log = logging.getLogger(__name__)


def _upstream(response: httpx.Response, app_id: str) -> Any:
    """Returns the callee's JSON success body, or raises the `ApiError` the gateway should answer with.

    A 2xx `Refusal` body (see the module docstring) becomes its own status, code and detail. A
    callee's 4xx (a callee that predates refusals) is passed on unchanged. A 5xx that carries a Dapr
    `errorCode` means the sidecars could not reach the callee (down, timed out, circuit open): 503.
    A callee's own 503 means one of its dependencies is down (its sidecar, the state store, Redis:
    `lore_core.http.install_error_handlers`): passed on as 503, a transient outage the client may
    retry. Any other 5xx is the callee's own failure: 502.
    """
    try:
        body = response.json()
    except ValueError:
        body = {"error": "upstream_error", "detail": response.text[:500]}
    if response.status_code < 400:
        if isinstance(body, dict) and body.get("outcome") == Outcome.REFUSED:
            refusal = Refusal.model_validate(body)
            raise ApiError(refusal.status, refusal.error, refusal.detail)
        return body
    if response.status_code < 500:
        if isinstance(body, dict) and "error" in body:
            raise ApiError(response.status_code, str(body["error"]), body.get("detail"))
        raise ApiError(response.status_code, "upstream_rejected", body)
    log.warning("%s answered HTTP %d: %s", app_id, response.status_code, str(body)[:500])
    if isinstance(body, dict) and "errorCode" in body:
        raise ApiError(503, "upstream_unavailable", f"{app_id} is unavailable: {body.get('message', '')}")
    if response.status_code == 503:
        detail = body.get("detail", "") if isinstance(body, dict) else ""
        raise ApiError(503, "upstream_unavailable", f"{app_id} is unavailable: {detail}"[:500])
    raise ApiError(502, "upstream_error", f"{app_id} failed with HTTP {response.status_code}")


class Lore:
    """Ingestion and questions, delegated to lore-ingest and lore-query."""

    def __init__(self, sidecar: Sidecar, *, query_app: str, ingest_app: str) -> None:
        self._sidecar = sidecar
        self._query_app = query_app
        self._ingest_app = ingest_app

    async def _invoke(
        self,
        app_id: str,
        method: str,
        *,
        tenant: str,
        http_method: str = "POST",
        body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """Calls ``method`` of ``app_id`` for ``tenant`` with a JSON ``body`` or raw ``content``
        (of ``content_type``); returns the callee's JSON answer or raises the `ApiError` to send."""
        headers = {TENANT_HEADER: tenant, **({"content-type": content_type} if content_type else {})}
        try:
            response = await self._sidecar.invoke(
                app_id, method, http_method=http_method, json_body=body, content=content, headers=headers
            )
        except DaprError as exc:
            raise ApiError(503, "upstream_unavailable", f"{app_id} is unavailable: {exc}") from exc
        return _upstream(response, app_id)

    async def ingest(self, document: DocumentIn) -> DocumentStatus:
        body = await self._invoke(
            self._ingest_app, "documents", tenant=document.tenant, body=document.model_dump(mode="json")
        )
        return DocumentStatus.model_validate(body)

    async def enqueue(self, document: DocumentIn) -> DocumentStatus:
        """Queues the document for asynchronous indexing through lore-ingest, which records its
        `accepted` status before publishing the ingestion event, so a status lookup right after
        the 202 finds it."""
        body = await self._invoke(
            self._ingest_app, "documents/queue", tenant=document.tenant, body=document.model_dump(mode="json")
        )
        return DocumentStatus.model_validate(body)

    async def ingest_files(
        self, body: bytes, *, content_type: str, tenant: str, params: dict[str, str]
    ) -> FilesIngested:
        """Passes an upload (multipart or raw) to lore-ingest's `files` as is, with its content type."""
        method = f"files?{urlencode({'tenant': tenant, **params})}"
        answer = await self._invoke(
            self._ingest_app, method, tenant=tenant, content=body, content_type=content_type
        )
        return FilesIngested.model_validate(answer)

    async def submit_job(self, job: JobIn) -> JobStatus:
        """Starts an ingestion job of JSON documents; lore-ingest answers its first status at once."""
        body = await self._invoke(
            self._ingest_app, "jobs", tenant=job.tenant, body=job.model_dump(mode="json")
        )
        return JobStatus.model_validate(body)

    async def submit_job_files(self, body: bytes, *, content_type: str, tenant: str) -> JobStatus:
        """Starts an ingestion job of uploaded files: the multipart body (whose `tenant` field is
        ``tenant``) goes to lore-ingest as is."""
        answer = await self._invoke(
            self._ingest_app, "jobs", tenant=tenant, content=body, content_type=content_type
        )
        return JobStatus.model_validate(answer)

    async def jobs(self, tenant: str) -> JobList:
        body = await self._invoke(self._ingest_app, f"jobs/{tenant}", tenant=tenant, http_method="GET")
        return JobList.model_validate(body)

    async def job(self, tenant: str, job_id: str) -> JobStatus:
        body = await self._invoke(
            self._ingest_app, f"jobs/{tenant}/{job_id}", tenant=tenant, http_method="GET"
        )
        return JobStatus.model_validate(body)

    async def delete_job(self, tenant: str, job_id: str) -> JobStatus:
        """Cancels a running job, or purges one that has ended; returns its status."""
        body = await self._invoke(
            self._ingest_app, f"jobs/{tenant}/{job_id}", tenant=tenant, http_method="DELETE"
        )
        return JobStatus.model_validate(body)

    async def status(self, tenant: str, document_id: str) -> DocumentStatus:
        body = await self._invoke(
            self._ingest_app, f"documents/{tenant}/{document_id}", tenant=tenant, http_method="GET"
        )
        return DocumentStatus.model_validate(body)

    async def delete(self, tenant: str, document_id: str) -> DocumentDeleted:
        body = await self._invoke(
            self._ingest_app, f"documents/{tenant}/{document_id}", tenant=tenant, http_method="DELETE"
        )
        return DocumentDeleted.model_validate(body)

    async def answer(self, question: QuestionIn) -> Answer:
        body = await self._invoke(
            self._query_app, "answers", tenant=question.tenant, body=question.model_dump(mode="json")
        )
        return Answer.model_validate(body)

    async def answer_stream(self, question: AnswerIn) -> AsyncIterator[bytes]:
        """Opens lore-query's Server-Sent Events answer through the sidecars and relays it.

        Failures before the first byte raise `ApiError` like `answer` does (the client gets a
        normal error response). Once streaming, the events are passed on as they arrive; a stream
        that breaks or ends without its `final` event (a resiliency timeout cuts a stream with a
        clean close and HTTP 200) ends with an `error` event, never silently.
        """
        client = self._sidecar.client
        # `Accept: text/event-stream` puts daprd's invocation in SSE mode, which flushes every event
        # (daprd v1.18.1 pkg/api/http/directmessaging.go:250).
        request = client.build_request(
            "POST",
            f"/v1.0/invoke/{self._query_app}/method/answers",
            json=question.model_dump(mode="json"),
            headers={"accept": "text/event-stream", TENANT_HEADER: question.tenant},
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ApiError(503, "upstream_unavailable", f"{self._query_app} is unavailable: {exc}") from exc
        if response.status_code >= 300 or not response.headers.get("content-type", "").startswith(
            "text/event-stream"
        ):
            try:
                await response.aread()
            finally:
                await response.aclose()
            _upstream(response, self._query_app)
            raise ApiError(502, "upstream_error", f"{self._query_app} did not answer with a stream")
        return self._relay(response)

    async def _relay(self, response: httpx.Response) -> AsyncIterator[bytes]:
        finished = False
        buffer = ""
        try:
            async for text in response.aiter_text():
                buffer += text
                *events, buffer = buffer.split("\n\n")
                for event in events:
                    finished = finished or event.startswith("event: final")
                    yield f"{event}\n\n".encode()
            cause = "ended before its final event"
        except httpx.HTTPError as exc:
            cause = f"broke off ({type(exc).__name__})"
        finally:
            await response.aclose()
        if not finished:
            log.warning("%s's answer stream %s", self._query_app, cause)
            detail = json.dumps(
                {"error": "upstream_cut", "detail": f"{self._query_app}'s answer stream {cause}"}
            )
            yield f"event: error\ndata: {detail}\n\n".encode()

    async def app_healthy(self, app_id: str) -> bool:
        response = await self._sidecar.invoke(app_id, "healthz", http_method="GET")
        return response.status_code == 200

    async def retrieve(self, request: RetrieveIn) -> Retrieved:
        body = await self._invoke(
            self._query_app, "retrieve", tenant=request.tenant, body=request.model_dump(mode="json")
        )
        return Retrieved.model_validate(body)
