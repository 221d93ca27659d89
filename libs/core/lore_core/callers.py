"""Who may act for which tenant on the internal routes of lore-query and lore-ingest.

Callers reach those routes only through Dapr service invocation. Three layers decide:

1. The callee's sidecar lets a call in only when the caller's app-id, taken from its mTLS
   certificate, has an access-control policy (`dapr/config.yaml`): the gateway, and the app-ids a
   deployment lists for other services of the user. Others get HTTP 403 from Dapr.
2. The caller's sidecar puts its own app-id in the `dapr-caller-app-id` header, replacing any
   value the calling app sent (dapr v1.18.1 pkg/messaging/direct_messaging.go:563,
   `addCallerAndCalleeAppIDHeaderToMetadata`), and the callee's sidecar passes it to the app.
   `check` refuses with a real 403 any request whose caller is not trusted: one that reached the
   app without Dapr's invocation (the app API token alone), or past a Configuration without the
   policies.
3. The tenant a call acts for travels in the `lore-tenant` header, set by the gateway from the
   caller's API key. A trusted caller may act for any tenant (the gateway authenticated the user;
   a listed service is the user's own); when the header is present, the tenant named in the
   body or path must be the same one, else a 200 `Refusal` with status 403, so that a mismatch
   never counts against the caller's circuit breaker (see `Refusal`).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request
from pydantic_settings import BaseSettings, SettingsConfigDict

from lore_core.contracts import Refusal
from lore_core.http import ApiError

CALLER_HEADER = "dapr-caller-app-id"
TENANT_HEADER = "lore-tenant"


class CallerSettings(BaseSettings):
    """The app-ids lore-query and lore-ingest trust, from the environment.

    ``TRUSTED_APP_IDS`` is a JSON list (``["billing", "crm"]``); the same ids must be listed in the
    Dapr Configuration's access control, where the stack and the chart render it.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    gateway_app_id: str = "lore-gateway"
    trusted_app_ids: tuple[str, ...] = ()


class Callers:
    """The trusted callers of an app's internal routes.

    Args:
        trusted: App-ids that may invoke the routes and set the tenant header.
    """

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted = frozenset(trusted)

    @classmethod
    def from_settings(cls, settings: CallerSettings) -> Callers:
        return cls((settings.gateway_app_id, *settings.trusted_app_ids))

    def check(self, request: Request, tenant: str) -> Refusal | None:
        """Checks that the caller may act for ``tenant`` (the tenant the body or path names).

        Returns:
            None when it may; a `Refusal` (status 403) when the `lore-tenant` header names another
            tenant.

        Raises:
            ApiError: 403 `forbidden_caller` when the caller's app-id is missing or not trusted.
        """
        # Every value must be trusted: a caller app that sends the header itself may reach the app
        # with its forged value next to the one its sidecar adds, in either order (seen in CI).
        values = request.headers.getlist(CALLER_HEADER)
        caller = next((v for v in values if v not in self.trusted), None) if values else None
        if not values or caller is not None:
            raise ApiError(
                403,
                "forbidden_caller",
                f"app-id {caller!r} may not invoke {request.url.path}" if caller else "no caller app-id",
            )
        claimed = request.headers.get(TENANT_HEADER)
        if claimed is not None and claimed != tenant:
            return Refusal(
                error="tenant_mismatch",
                detail=f"the request names tenant {tenant!r}, the {TENANT_HEADER} header {claimed!r}",
                status=403,
            )
        return None
