"""API keys: created, listed (never with their secret) and revoked by an admin of the tenant."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from lore_core.contracts import TENANT_PATTERN
from lore_core.http import parse_body
from lore_gateway.auth import ApiKeyCreated, ApiKeyIn, ApiKeyInfo, KeyStore, Principal, PrincipalDep, Role
from lore_gateway.deps import SettingsDep
from lore_gateway.errors import errors, link

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class ApiKeys(BaseModel):
    keys: list[ApiKeyInfo]


def _store(request: Request) -> KeyStore:
    return cast(KeyStore, request.app.state.keys)


def _tenant(principal: Principal, requested: str | None) -> str:
    """The tenant whose keys an admin manages: its own; the operator may name any tenant."""
    principal.require(Role.ADMIN)
    if principal.operator and requested is not None:
        return requested
    return principal.scope(requested)


def _body_schema() -> dict[str, Any]:
    schema = ApiKeyIn.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_REVOKE = link("/v1/keys/{key_id}", "delete", "Revoke the key.", key_id="$response.body#/key_id")


@router.post(
    "",
    status_code=201,
    openapi_extra=_body_schema(),
    responses={201: {"links": {"RevokeKey": _REVOKE}}, **errors(400, 403, 413, 422, 503)},
)
async def create_key(request: Request, principal: PrincipalDep, settings: SettingsDep) -> ApiKeyCreated:
    """Create an API key for the caller's tenant; its secret is in this answer only."""
    body = parse_body(await request.body(), ApiKeyIn, max_bytes=settings.max_body_bytes)
    tenant = _tenant(principal, body.tenant)
    return await _store(request).create(tenant, body.role, body.name)


@router.get("", responses=errors(403, 422))
async def list_keys(
    request: Request,
    principal: PrincipalDep,
    tenant: Annotated[str | None, Query(pattern=TENANT_PATTERN)] = None,
) -> ApiKeys:
    """The tenant's keys, revoked ones included, without their secrets."""
    return ApiKeys(keys=await _store(request).keys(_tenant(principal, tenant)))


@router.delete("/{key_id}", responses=errors(403, 404, 422))
async def revoke_key(
    request: Request,
    principal: PrincipalDep,
    key_id: Annotated[str, Path(max_length=64)],
    tenant: Annotated[str | None, Query(pattern=TENANT_PATTERN)] = None,
) -> ApiKeyInfo:
    """Revoke a key: the next call made with it is refused."""
    return await _store(request).revoke(_tenant(principal, tenant), key_id)
