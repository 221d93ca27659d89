"""Lore's client of its Dapr sidecar.

State (with ETags), pub/sub and secrets go through the official Python SDK's asyncio gRPC client
(`dapr.aio.clients.DaprClient`). Service invocation and health checks stay on plain HTTP with one
pooled `httpx.AsyncClient`, as the Dapr maintainers recommend for invocation (the SDK's
`invoke_method` over HTTP is deprecated in favour of an ordinary HTTP client pointed at the
sidecar, and only HTTP streams a response chunk by chunk). The `dapr-api-token` goes with every
call. Retries, timeouts and circuit breakers are not written here: they are Dapr resiliency
policies (`dapr/resiliency.yaml`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError, DaprInternalError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Concurrency, StateItem, StateOptions
from dapr.conf import settings as dapr_settings
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.trace import TracerProvider


class DaprError(Exception):
    """The sidecar answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class EtagMismatchError(DaprError):
    """A state write carried an ETag that no longer matches the stored item."""


@dataclass(frozen=True)
class StateOp:
    """One operation of a state transaction (`Sidecar.transact`).

    Args:
        key: The state key (daprd prefixes it with the app-id).
        value: The JSON value to save (ignored by a delete).
        etag: Write only if the stored item still has this ETag (None: unconditionally).
        delete: Delete the key instead of saving it.
        metadata: Per-operation metadata, passed to the state store and, on a store with a
            transactional outbox, copied into the CloudEvent of a save (e.g. ``{"type": ...}``).
        event: With an outbox: publish ``value`` as the event's JSON `data` (a projection of the
            same key: Dapr publishes it in place of the stored bytes and does not store it).
    """

    key: str
    value: Any = None
    etag: str | None = None
    delete: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)
    event: bool = False


# Errors of a state store that mean "the ETag did not match". daprd answers a failed transaction
# with INTERNAL and the store's message (pkg/api/grpc/grpc.go:1064 in v1.18.1), not ABORTED as for
# a single save: stores that report ETag conflicts properly use contrib's
# `state.ETagError` ("possible etag mismatch", components-contrib v1.18.0 state/errors.go:24);
# state.redis fails the Lua script of the write instead ("failed to set key" / "failed to delete",
# state/redis/redis.go:52 and :59).
_ETAG_MESSAGES = ("possible etag mismatch", "failed to set key", "failed to delete")


class Sidecar:
    """Calls the local daprd.

    Args:
        base_url: The sidecar's HTTP endpoint, e.g. ``http://127.0.0.1:3500``.
        api_token: The Dapr API token daprd was started with (sent as ``dapr-api-token``).
        grpc_address: The sidecar's gRPC endpoint (``127.0.0.1:50001``), used by the SDK client.
        timeout: Client-side ceiling for one call; the resiliency policy should fire first.
    """

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        grpc_address: str,
        timeout: float = 60.0,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"dapr-api-token": api_token},
            timeout=httpx.Timeout(timeout, connect=5.0),
        )
        self._base_url = base_url
        self._api_token = api_token
        self._grpc_address = grpc_address
        self._timeout = timeout
        self._tracer_provider = tracer_provider
        self._sdk: DaprClient | None = None
        self._sdk_lock = asyncio.Lock()

    async def _dapr(self) -> DaprClient:
        """The SDK client, created on first use (after `wait_ready`: its constructor checks the
        sidecar's health synchronously, which then answers at once)."""
        async with self._sdk_lock:
            if self._sdk is None:
                # The SDK reads the token and the health URL from its global settings (normally
                # filled from the environment); Lore's settings are the one source of both.
                setattr(dapr_settings, "DAPR_API_TOKEN", self._api_token)  # noqa: B010
                setattr(dapr_settings, "DAPR_HTTP_ENDPOINT", self._base_url)  # noqa: B010
                # W3C context on every gRPC call: daprd continues the caller's trace, and for a
                # publish keeps it in the CloudEvent, so the subscriber's span joins it.
                interceptors = aio_client_interceptors(tracer_provider=self._tracer_provider)
                self._sdk = DaprClient(address=self._grpc_address, interceptors=interceptors)
            return self._sdk

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None

    async def wait_ready(self, timeout: float) -> None:
        """Waits until the sidecar's outbound API (components, secrets) is ready.

        Raises:
            DaprError: when the sidecar is not ready within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = await self._client.get("/v1.0/healthz/outbound", timeout=2.0)
                if response.status_code == 204:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.2)
        raise DaprError(f"sidecar not ready after {timeout:.0f}s ({last})")

    async def healthy(self) -> bool:
        """True when the sidecar reports itself healthy."""
        try:
            response = await self._client.get("/v1.0/healthz", timeout=2.0)
        except httpx.TransportError:
            return False
        return response.status_code == 204

    async def invoke(
        self,
        app_id: str,
        method: str,
        *,
        http_method: str = "POST",
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Invokes ``method`` on ``app_id`` through the sidecars and returns the raw response.

        The body is ``json_body`` as JSON, or ``content`` as is (give its `content-type` in
        ``headers``). The callee's status code is passed through unchanged; only a failure to reach
        the sidecar raises.
        """
        try:
            return await self._client.request(
                http_method,
                f"/v1.0/invoke/{app_id}/method/{method.lstrip('/')}",
                json=json_body,
                content=content,
                headers=headers,
            )
        except httpx.TransportError as exc:
            raise DaprError(f"sidecar unreachable: {type(exc).__name__}") from exc

    async def publish(
        self,
        pubsub: str,
        topic: str,
        data: Any,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Publishes ``data`` as JSON; the sidecar wraps it in a CloudEvent."""
        dapr = await self._dapr()
        try:
            await dapr.publish_event(
                pubsub,
                topic,
                json.dumps(data),
                data_content_type="application/json",
                publish_metadata=dict(metadata or {}),
            )
        except (DaprGrpcError, DaprInternalError) as exc:
            raise _error(exc, f"publish to {pubsub}/{topic}") from exc

    async def get_state(self, store: str, key: str) -> tuple[Any, str | None]:
        """Returns ``(value, etag)``; ``(None, None)`` when the key does not exist."""
        dapr = await self._dapr()
        try:
            response = await dapr.get_state(store, key)
        except (DaprGrpcError, DaprInternalError) as exc:
            raise _error(exc, f"get state {store}/{key}") from exc
        if not response.data:
            return None, None
        return json.loads(response.data), response.etag or None

    async def save_state(
        self, store: str, key: str, value: Any, *, etag: str | None = None, ttl_seconds: int | None = None
    ) -> None:
        """Saves one item; with ``etag`` the write is first-write-wins; with ``ttl_seconds`` the store
        expires it (Dapr's `ttlInSeconds` state metadata, honoured by state.redis).

        Raises:
            EtagMismatchError: the item changed since ``etag`` was read.
        """
        dapr = await self._dapr()
        options = StateOptions(concurrency=Concurrency.first_write) if etag is not None else None
        metadata = {"ttlInSeconds": str(ttl_seconds)} if ttl_seconds is not None else {}
        try:
            await dapr.save_state(
                store, key, json.dumps(value), etag=etag, options=options, state_metadata=metadata
            )
        except (DaprGrpcError, DaprInternalError) as exc:
            # daprd answers an ETag mismatch with ABORTED (pkg/api/grpc/grpc.go, stateErrorCode).
            # The aio client's save_state wraps the gRPC error in a DaprInternalError, whose cause
            # keeps the status (dapr/aio/clients/grpc/client.py, save_state).
            # An empty ETag (create only if absent) that loses is no ETagError in state.redis but a
            # plain "failed to set key" (redis.go:366-371, `HasETag` is false), hence INTERNAL.
            message = f"{exc} {exc.__cause__ or ''}".lower()
            if _status(exc) == "ABORTED" or (etag == "" and any(m in message for m in _ETAG_MESSAGES)):
                raise EtagMismatchError(f"etag mismatch on {store}/{key}", status_code=409) from exc
            raise _error(exc, f"save state {store}/{key}") from exc

    async def save_bulk_state(self, store: str, items: Mapping[str, Any]) -> None:
        """Saves several items unconditionally in one call (not a transaction: no outbox event)."""
        dapr = await self._dapr()
        states = [StateItem(key=key, value=json.dumps(value)) for key, value in items.items()]
        try:
            await dapr.save_bulk_state(store, states)
        except (DaprGrpcError, DaprInternalError) as exc:
            raise _error(exc, f"save bulk state {store}") from exc

    async def get_bulk_state(self, store: str, keys: Sequence[str]) -> dict[str, Any]:
        """Returns ``{key: value}`` for the keys that exist."""
        if not keys:
            return {}
        dapr = await self._dapr()
        try:
            response = await dapr.get_bulk_state(store, list(keys))
        except (DaprGrpcError, DaprInternalError) as exc:
            raise _error(exc, f"get bulk state {store}") from exc
        return {item.key: json.loads(item.data) for item in response.items if item.data}

    async def transact(self, store: str, operations: Sequence[StateOp]) -> None:
        """Saves and deletes items in one state transaction.

        On a state store configured with a transactional outbox (`outboxPublishPubsub` /
        `outboxPublishTopic`), Dapr publishes one CloudEvent per saved item along with the
        transaction (deletes publish nothing); only this API triggers the outbox, never
        `save_state` (daprd v1.18.1 pkg/api/grpc/grpc.go:1035-1045).

        Raises:
            EtagMismatchError: an operation's ETag no longer matches its stored item.
        """
        dapr = await self._dapr()
        ops: list[TransactionalStateOperation] = []
        for op in operations:
            if op.delete:
                ops.append(
                    TransactionalStateOperation(
                        key=op.key,
                        etag=op.etag,
                        operation_type=TransactionOperationType.delete,
                        metadata=dict(op.metadata) or None,
                    )
                )
                continue
            data = json.dumps(op.value)
            ops.append(
                TransactionalStateOperation(key=op.key, data=data, etag=op.etag, metadata=dict(op.metadata))
            )
            if op.event:
                # A projection: an operation on the same key with `outbox.projection` is taken out
                # of the transaction and its value becomes the event's data; its `contentType`
                # makes the data a JSON object rather than a string (pkg/runtime/pubsub/outbox.go
                # :155-198 and :221). Setting `contentType` on the stored item instead would make
                # state.redis store it as a RedisJSON document (state/redis/redis.go:424).
                projection = {"outbox.projection": "true", "contentType": "application/json"}
                ops.append(TransactionalStateOperation(key=op.key, data=data, metadata=projection))
        try:
            await dapr.execute_state_transaction(store, ops)
        except (DaprGrpcError, DaprInternalError) as exc:
            message = f"{exc} {exc.__cause__ or ''}".lower()
            if _status(exc) == "ABORTED" or any(m in message for m in _ETAG_MESSAGES):
                raise EtagMismatchError(
                    f"etag mismatch in a transaction on {store}", status_code=409
                ) from exc
            raise _error(exc, f"state transaction on {store}") from exc

    async def delete_state(self, store: str, key: str) -> None:
        dapr = await self._dapr()
        try:
            await dapr.delete_state(store, key)
        except (DaprGrpcError, DaprInternalError) as exc:
            raise _error(exc, f"delete state {store}/{key}") from exc

    async def get_secret(self, store: str, name: str) -> dict[str, str]:
        """Returns the secret's key/value map (a local file store returns ``{name: value}``)."""
        dapr = await self._dapr()
        try:
            response = await dapr.get_secret(store, name)
        except (DaprGrpcError, DaprInternalError) as exc:
            raise _error(exc, f"get secret {store}/{name}") from exc
        return {str(k): str(v) for k, v in response.secret.items()}

    async def secret_value(self, store: str, name: str) -> str | None:
        """The value of a one-value secret (a Kubernetes Secret may name its one key otherwise).

        Returns None when ``name`` is empty (the setting turns the secret off); raises `DaprError`
        when the secret is missing or the store cannot be read.
        """
        if not name:
            return None
        values = await self.get_secret(store, name)
        return values.get(name) or next(iter(values.values()), None)


def _status(exc: BaseException) -> str | None:
    """The gRPC status name carried by an SDK error or by the gRPC error it wraps."""
    for candidate in (exc, exc.__cause__):
        code = getattr(candidate, "code", None)
        if callable(code):
            return str(code().name)
    return None


def _error(exc: Exception, what: str) -> DaprError:
    # UNAVAILABLE: the sidecar (or the component behind it) could not be reached.
    return DaprError(f"{what} failed: {_status(exc) or 'error'}: {exc}", body=str(exc))
