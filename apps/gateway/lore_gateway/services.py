"""The gateway's view of the other Lore apps, reached only through Dapr service invocation."""

from __future__ import annotations

from typing import Any

import httpx

from lore_core.contracts import Answer, DocumentDeleted, DocumentIn, DocumentState, DocumentStatus, QuestionIn
from lore_core.dapr import DaprError, Sidecar
from lore_core.http import ApiError


def _upstream(response: httpx.Response, app_id: str) -> Any:
    """Returns the callee's JSON body, or raises the `ApiError` the gateway should answer with.

    A callee's 4xx is passed on unchanged. A 5xx that carries a Dapr `errorCode` means the sidecars
    could not reach the callee (down, timed out, circuit open): 503. Any other 5xx is the callee's
    own failure: 502.
    """
    try:
        body = response.json()
    except ValueError:
        body = {"error": "upstream_error", "detail": response.text[:500]}
    if response.status_code < 400:
        return body
    if response.status_code < 500:
        if isinstance(body, dict) and "error" in body:
            raise ApiError(response.status_code, str(body["error"]), body.get("detail"))
        raise ApiError(response.status_code, "upstream_rejected", body)
    if isinstance(body, dict) and "errorCode" in body:
        raise ApiError(503, "upstream_unavailable", f"{app_id} is unavailable: {body.get('message', '')}")
    raise ApiError(502, "upstream_error", f"{app_id} failed with HTTP {response.status_code}")


class Lore:
    """Ingestion and questions, delegated to lore-ingest and lore-query."""

    def __init__(
        self, sidecar: Sidecar, *, query_app: str, ingest_app: str, pubsub: str, ingest_topic: str
    ) -> None:
        self._sidecar = sidecar
        self._query_app = query_app
        self._ingest_app = ingest_app
        self._pubsub = pubsub
        self._topic = ingest_topic

    async def _invoke(self, app_id: str, method: str, *, http_method: str = "POST", body: Any = None) -> Any:
        try:
            response = await self._sidecar.invoke(app_id, method, http_method=http_method, json_body=body)
        except DaprError as exc:
            raise ApiError(503, "upstream_unavailable", f"{app_id} is unavailable: {exc}") from exc
        return _upstream(response, app_id)

    async def ingest(self, document: DocumentIn) -> DocumentStatus:
        body = await self._invoke(self._ingest_app, "documents", body=document.model_dump(mode="json"))
        return DocumentStatus.model_validate(body)

    async def enqueue(self, document: DocumentIn) -> DocumentStatus:
        """Publishes the document as an ingestion event; lore-ingest indexes it asynchronously."""
        try:
            await self._sidecar.publish(self._pubsub, self._topic, document.model_dump(mode="json"))
        except DaprError as exc:
            raise ApiError(503, "pubsub_unavailable", str(exc)) from exc
        return DocumentStatus(
            document_id=document.document_id(),
            tenant=document.tenant,
            state=DocumentState.ACCEPTED,
            title=document.title,
        )

    async def status(self, tenant: str, document_id: str) -> DocumentStatus:
        body = await self._invoke(self._ingest_app, f"documents/{tenant}/{document_id}", http_method="GET")
        return DocumentStatus.model_validate(body)

    async def delete(self, tenant: str, document_id: str) -> DocumentDeleted:
        body = await self._invoke(self._ingest_app, f"documents/{tenant}/{document_id}", http_method="DELETE")
        return DocumentDeleted.model_validate(body)

    async def answer(self, question: QuestionIn) -> Answer:
        body = await self._invoke(self._query_app, "answers", body=question.model_dump(mode="json"))
        return Answer.model_validate(body)

    async def app_healthy(self, app_id: str) -> bool:
        response = await self._sidecar.invoke(app_id, "healthz", http_method="GET")
        return response.status_code == 200
