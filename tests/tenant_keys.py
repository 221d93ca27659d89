"""An httpx `Auth` that calls the gateway as a holder of the key of whichever tenant a request names.

Tests of retrieval, ingestion or generation are not about authentication; they name tenants in
bodies and paths as callers of those tenants would. This signs each request with an admin key of
that tenant (made once through `POST /v1/keys` with the operator key), so those tests exercise the
real authentication path without repeating it. `tests/integration/test_auth.py` tests the keys
themselves, with keys it makes explicitly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from urllib.parse import unquote

import httpx

_PATH_TENANT = re.compile(r"^/v1/(?:documents|jobs)/([^/]+)/")
_FORM_TENANT = re.compile(rb'name="tenant"\r\n\r\n([^\r]*)\r\n')


def tenant_of(request: httpx.Request) -> str:
    """The tenant a gateway request acts on: body `tenant` (or `lore.tenant`), path, query, form."""
    if "tenant" in request.url.params:
        return request.url.params["tenant"]
    match = _PATH_TENANT.match(request.url.path)
    if match:
        return unquote(match.group(1))
    content = request.content
    if content and request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(content)
        except ValueError:
            return "default"
        if isinstance(body, dict):
            lore = body.get("lore")
            tenant = body.get("tenant") or (lore.get("tenant") if isinstance(lore, dict) else None)
            if isinstance(tenant, str):
                return tenant
    elif content:
        form = _FORM_TENANT.search(content)
        if form:
            return form.group(1).decode()
    return "default"


class TenantKeys(httpx.Auth):
    """Signs every request with a key of the tenant it names (see the module docstring)."""

    requires_request_body = True

    def __init__(self, gateway_url: str, operator_key: str) -> None:
        self._url = gateway_url
        self._operator = operator_key
        self._keys: dict[str, str] = {"default": operator_key}

    def key(self, tenant: str) -> str:
        if tenant not in self._keys:
            made = httpx.post(
                f"{self._url}/v1/keys",
                json={"tenant": tenant, "role": "admin", "name": "tests"},
                headers={"authorization": f"Bearer {self._operator}"},
                timeout=30,
            )
            if made.status_code != 201:
                # A tenant no key can have (a hostile or malformed name): send the operator key,
                # so the gateway answers the request the way it answers any foreign tenant.
                return self._operator
            self._keys[tenant] = str(made.json()["key"])
        return self._keys[tenant]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            request.headers["authorization"] = f"Bearer {self.key(tenant_of(request))}"
        yield request
