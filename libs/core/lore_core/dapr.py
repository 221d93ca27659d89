"""A small async client for the Dapr sidecar's HTTP API.

Lore talks to its sidecar over HTTP with one pooled `httpx.AsyncClient` per app: service
invocation (including streamed responses), pub/sub, state with ETags, secrets and health. The
`dapr-api-token` header is added to every call. Retries, timeouts and circuit breakers are not
written here: they are Dapr resiliency policies (`dapr/resiliency.yaml`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx


class DaprError(Exception):
    """The sidecar answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class EtagMismatchError(DaprError):
    """A state write carried an ETag that no longer matches the stored item."""


class Sidecar:
    """Calls the local daprd over HTTP.

    Args:
        base_url: The sidecar's HTTP endpoint, e.g. ``http://127.0.0.1:3500``.
        api_token: The Dapr API token daprd was started with (sent as ``dapr-api-token``).
        timeout: Client-side ceiling for one call; the resiliency policy should fire first.
    """

    def __init__(self, base_url: str, api_token: str, *, timeout: float = 60.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"dapr-api-token": api_token},
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

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
    ) -> httpx.Response:
        """Invokes ``method`` on ``app_id`` through the sidecars and returns the raw response.

        The callee's status code is passed through unchanged; only a failure to reach the sidecar
        raises.
        """
        try:
            return await self._client.request(
                http_method,
                f"/v1.0/invoke/{app_id}/method/{method.lstrip('/')}",
                json=json_body,
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
        params = {f"metadata.{k}": v for k, v in (metadata or {}).items()}
        response = await self._request("POST", f"/v1.0/publish/{pubsub}/{topic}", json=data, params=params)
        _raise_for(response, f"publish to {pubsub}/{topic}")

    async def get_state(self, store: str, key: str) -> tuple[Any, str | None]:
        """Returns ``(value, etag)``; ``(None, None)`` when the key does not exist."""
        response = await self._request("GET", f"/v1.0/state/{store}/{key}")
        if response.status_code == 204:
            return None, None
        _raise_for(response, f"get state {store}/{key}")
        return response.json(), response.headers.get("etag")

    async def save_state(self, store: str, key: str, value: Any, *, etag: str | None = None) -> None:
        """Saves one item; with ``etag`` the write is first-write-wins.

        Raises:
            EtagMismatchError: the item changed since ``etag`` was read.
        """
        item: dict[str, Any] = {"key": key, "value": value}
        if etag is not None:
            item["etag"] = etag
            item["options"] = {"concurrency": "first-write"}
        response = await self._request("POST", f"/v1.0/state/{store}", json=[item])
        if response.status_code == 409:
            raise EtagMismatchError(f"etag mismatch on {store}/{key}", status_code=409, body=_body(response))
        _raise_for(response, f"save state {store}/{key}")

    async def delete_state(self, store: str, key: str) -> None:
        response = await self._request("DELETE", f"/v1.0/state/{store}/{key}")
        _raise_for(response, f"delete state {store}/{key}")

    async def get_secret(self, store: str, name: str) -> dict[str, str]:
        """Returns the secret's key/value map (a local file store returns ``{name: value}``)."""
        response = await self._request("GET", f"/v1.0/secrets/{store}/{name}")
        _raise_for(response, f"get secret {store}/{name}")
        data = response.json()
        return {str(k): str(v) for k, v in data.items()}

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise DaprError(f"sidecar unreachable: {type(exc).__name__}") from exc


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        body = _body(response)
        raise DaprError(
            f"{what} failed: HTTP {response.status_code}: {body}", status_code=response.status_code, body=body
        )
