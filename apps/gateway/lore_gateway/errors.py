"""The error answers and links of the public API, as OpenAPI `responses` for the route decorators.

Every error body is `{"error": <code>, "detail": ...}` (`lore_core.http`), except the OpenAI-shaped
errors of `POST /v1/chat/completions`. Each route lists the statuses it can answer, so a client
generated from the OpenAPI document (and the schemathesis run of
`tests/integration/test_api_fuzz.py`) knows every status and body it may get.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ApiErrorBody(BaseModel):
    """An error of the public API."""

    error: str = Field(description="A stable, machine-readable code, such as `unauthenticated`.")
    detail: Any = Field(
        description="What went wrong: a text, or for `invalid_request` a list of `{field, problem}`."
    )


class OpenAIErrorDetail(BaseModel):
    message: str | None
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """An error of `POST /v1/chat/completions`, in OpenAI's shape (the openai SDKs raise on it)."""

    error: OpenAIErrorDetail


_WHAT: dict[int, str] = {
    400: "`malformed_json` or `invalid_encoding`: the body is not UTF-8 JSON.",
    401: "`unauthenticated`: no API key, or an unknown, malformed or revoked one.",
    403: "`forbidden` (the key's role cannot do this) or `forbidden_tenant` (another tenant is named).",
    404: "`not_found`: no such resource in the caller's tenant.",
    413: "`too_large`: the body, or a document, is over the limit.",
    422: "`invalid_request`: each offending field with its problem.",
    429: "`rate_limited`: over the key's limit; `Retry-After` gives the seconds to wait.",
    431: "`headers_too_large`: the request's headers are over 16 KiB.",
    502: "`upstream_error`: lore-ingest or lore-query failed.",
    503: "`upstream_unavailable`: lore-ingest or lore-query cannot be reached now; retry later.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}


def errors(*statuses: int, chat: bool = False, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for ``statuses``, with the shared descriptions (``described``, keyed
    `sNNN`, overrides one); ``chat`` gives the bodies of `POST /v1/chat/completions`."""
    model: Any = ApiErrorBody | OpenAIError if chat else ApiErrorBody
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "model": model,
            "description": described.get(f"s{status}", _WHAT.get(status, "An error.")),
        }
        if status == 429:
            response["headers"] = _RETRY_AFTER
        responses[status] = response
    return responses


def link(path: str, method: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to the operation ``method`` ``path``, its parameters taken from the answer
    (runtime expressions such as `$response.body#/job_id`). `operationRef` rather than
    `operationId`: FastAPI derives the ids from function names, which may change."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method.lower()}",
        "parameters": parameters,
        "description": description,
    }
