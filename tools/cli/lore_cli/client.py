"""A thin synchronous client of the gateway's REST API (`/v1`), speaking plain JSON.

The CLI does not import Lore's pydantic contracts: it is a client like any other and reads the
documented JSON (`JobStatus`, `DocumentStatus`, `Answer`, Server-Sent Events of `/v1/answers`).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
# The gateway's own ceiling on a call through the sidecars is 150 s (SIDECAR_CALL_TIMEOUT_SECONDS).
TIMEOUT = httpx.Timeout(160.0, connect=5.0)
# Types the server may not know by name; the gateway dispatches on the file name's suffix anyway.
_CONTENT_TYPES = {".md": "text/markdown", ".jsonl": "application/jsonl", ".json": "application/json"}


class GatewayError(Exception):
    """The gateway answered with an error status.

    Attributes:
        status: the HTTP status.
        code: the body's `error` code (`not_found`, `too_large`, ...) when it has one.
        detail: the body's `detail` (text, or a list of `{field, problem}`), or the raw body.
    """

    def __init__(self, status: int, code: str | None, detail: Any) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        what = f"{self.status} {self.code}" if self.code else str(self.status)
        return f"the gateway answered {what}: {format_detail(self.detail)}"

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.code, "detail": self.detail}


class GatewayUnreachable(Exception):
    """No HTTP answer at all: the gateway is down, the URL is wrong, or the connection broke."""

    def __init__(self, url: str, cause: httpx.TransportError) -> None:
        self.url = url
        reason = str(cause) or type(cause).__name__
        super().__init__(f"cannot reach the gateway at {url}: {reason} (is it running? see --url / LORE_URL)")

    def as_json(self) -> dict[str, Any]:
        return {"status": None, "error": "unreachable", "detail": str(self)}


def format_detail(detail: Any) -> str:
    """A gateway error `detail` as one line: text as is, `{field, problem}` lists joined."""
    if isinstance(detail, list) and all(isinstance(d, dict) and "problem" in d for d in detail):
        return "; ".join(f"{d.get('field') or 'body'}: {d['problem']}" for d in detail)
    if isinstance(detail, str):
        return detail
    return json.dumps(detail, ensure_ascii=False)


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip() or response.reason_phrase
        raise GatewayError(response.status_code, None, text) from None
    if isinstance(body, dict) and "detail" in body:
        code = body.get("error")
        raise GatewayError(response.status_code, code if isinstance(code, str) else None, body["detail"])
    raise GatewayError(response.status_code, None, body)


@dataclass(frozen=True)
class Upload:
    """One file of a job: its bytes are read when the batch is sent."""

    path: Path
    name: str  # the file name the gateway sees (becomes the document's source)


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of a streamed answer: `token`, `citations`, `final` or `error`."""

    name: str
    data: Any


def parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    """Server-Sent Events from a stream of lines (`event:` and `data:` fields, blank line ends one)."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))
    if data:
        yield Event(name, json.loads("\n".join(data)))


class Gateway:
    """The gateway's `/v1` API; every method raises `GatewayError` or `GatewayUnreachable`."""

    def __init__(
        self, url: str, api_key: str | None = None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT, transport=transport)

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(self.url, exc) from exc
        _raise_for_status(response)
        return response.json()

    def document(self, tenant: str, document_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/v1/documents/{tenant}/{document_id}")
        return result

    def delete(self, tenant: str, document_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("DELETE", f"/v1/documents/{tenant}/{document_id}")
        return result

    def answer(self, question: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._json("POST", "/v1/answers", json={**question, "stream": False})
        return result

    def answer_stream(self, question: dict[str, Any]) -> Iterator[Event]:
        """The answer's events as they arrive; an error before the stream starts raises."""
        try:
            with self._http.stream("POST", "/v1/answers", json={**question, "stream": True}) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_status(response)
                yield from parse_sse(response.iter_lines())
        except httpx.TransportError as exc:
            raise GatewayUnreachable(self.url, exc) from exc

    def submit_job(
        self, tenant: str | None, files: Sequence[tuple[str, bytes]], text_field: str | None = None
    ) -> dict[str, Any]:
        """`POST /v1/jobs` with `(file name, content)` pairs as multipart parts named `files`.

        Without a tenant the gateway takes the API key's (or `default`).
        """
        parts = [("files", (name, content, _content_type(name))) for name, content in files]
        data = _given(tenant=tenant, text_field=text_field)
        result: dict[str, Any] = self._json("POST", "/v1/jobs", files=parts, data=data)
        return result

    def job(self, tenant: str | None, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", f"/v1/jobs/{job_id}", params=_given(tenant=tenant))
        return result

    def jobs(self, tenant: str | None) -> list[dict[str, Any]]:
        body = self._json("GET", "/v1/jobs", params=_given(tenant=tenant))
        jobs: list[dict[str, Any]] = body["jobs"]
        return jobs

    def cancel_job(self, tenant: str | None, job_id: str) -> dict[str, Any]:
        params = _given(tenant=tenant)
        result: dict[str, Any] = self._json("DELETE", f"/v1/jobs/{job_id}", params=params)
        return result

    def create_key(self, role: str, name: str, tenant: str | None) -> dict[str, Any]:
        body = {"role": role, "name": name, **_given(tenant=tenant)}
        result: dict[str, Any] = self._json("POST", "/v1/keys", json=body)
        return result

    def keys(self, tenant: str | None) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = self._json("GET", "/v1/keys", params=_given(tenant=tenant))["keys"]
        return keys

    def revoke_key(self, key_id: str, tenant: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self._json("DELETE", f"/v1/keys/{key_id}", params=_given(tenant=tenant))
        return result


def _given(**fields: str | None) -> dict[str, str]:
    """The fields that have a value (an omitted tenant is the API key's)."""
    return {name: value for name, value in fields.items() if value}


def _content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
