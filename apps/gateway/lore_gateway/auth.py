"""API keys, tenants and per-key rate limits of the public API.

Every `/v1` call carries `Authorization: Bearer <key>`. A key is bound to one tenant and one role
(`reader` < `writer` < `admin`); the tenant of every request comes from the key, and a body, path or
query naming another tenant is refused with 403 (`Principal.scope`).

Keys look like `lore_<key_id>_<secret>`. The state store holds only a SHA-256 of the secret, under
the gateway's app-id prefix (Dapr's default `keyPrefix: appid`), so neither lore-ingest nor
lore-query can read them:

* `apikey:{key_id}`: the `ApiKeyRecord` (tenant, role, name, hash, revoked_at);
* `apikeys:{tenant}`: the ids of that tenant's keys (written with its ETag, first-write-wins).

A fast hash is enough because the secrets are 256-bit random values (nothing to brute-force), the
way GitHub and Stripe store their tokens; a slow password hash would add tens of milliseconds to
every request. Records are read on every request (one state read through the sidecar, ~1-2 ms), so
a revoked key stops working on the next request.

The operator key is the secret `lore-admin-key` of the secret store (created by `make secrets`,
printed by `make run`): an admin of tenant `default` that may also manage other tenants' keys. It
is how the first key of a new tenant gets made.

Rate limits: `limits` (moving window) with Redis as the shared counter, so every gateway replica
counts the same calls; over the limit a call gets 429 with `Retry-After`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, cast

from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field

from lore_core.contracts import TENANT_PATTERN
from lore_core.dapr import EtagMismatchError, Sidecar
from lore_core.http import ApiError

_TOKEN = re.compile(r"\Alore_([0-9a-f]{16})_([A-Za-z0-9_-]{20,128})\Z")
_INDEX_ATTEMPTS = 8


class Role(StrEnum):
    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.READER: 0, Role.WRITER: 1, Role.ADMIN: 2}


class ApiKeyRecord(BaseModel):
    """A key as stored (`apikey:{key_id}`): never the secret itself."""

    model_config = ConfigDict(extra="forbid")

    key_id: str
    tenant: str
    role: Role
    name: str = ""
    secret_sha256: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyInfo(BaseModel):
    """A key as listed: everything but its hash."""

    key_id: str
    tenant: str
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyInfo):
    key: str = Field(description="The secret key; shown once, store it now.")


class ApiKeyIn(BaseModel):
    """Body of `POST /v1/keys`."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str = Field(default="", max_length=200)
    tenant: str | None = Field(
        default=None,
        pattern=TENANT_PATTERN,
        description="Tenant of the new key; only the operator key may name a tenant other than its own.",
    )


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, tenant and role."""

    key_id: str
    tenant: str | None  # None: authentication is switched off (`AUTH_REQUIRED=false`), any tenant
    role: Role
    operator: bool = False

    def require(self, role: Role) -> None:
        if self.role.rank < role.rank:
            raise ApiError(403, "forbidden", f"this key's role `{self.role}` cannot do this; needs `{role}`")

    def scope(self, requested: str | None) -> str:
        """The tenant a request acts on: the key's. Naming another one is refused, not ignored, so a
        caller who got it wrong learns it instead of reading the wrong tenant's data."""
        if self.tenant is None:
            return requested or "default"
        if requested is not None and requested != self.tenant:
            raise ApiError(
                403, "forbidden_tenant", f"this key belongs to tenant `{self.tenant}`, not `{requested}`"
            )
        return self.tenant


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """API keys in the Dapr state store (see the module docstring for the keys it writes)."""

    def __init__(self, sidecar: Sidecar, *, store: str, operator_key: str | None) -> None:
        self._sidecar = sidecar
        self._store = store
        self._operator = operator_key or None

    async def authenticate(self, token: str) -> Principal | None:
        if self._operator is not None and hmac.compare_digest(token.encode(), self._operator.encode()):
            return Principal(key_id="operator", tenant="default", role=Role.ADMIN, operator=True)
        match = _TOKEN.match(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        record = await self._get(key_id)
        if record is None or record.revoked_at is not None:
            return None
        if not hmac.compare_digest(_sha256(secret), record.secret_sha256):
            return None
        return Principal(key_id=key_id, tenant=record.tenant, role=record.role)

    async def create(self, tenant: str, role: Role, name: str) -> ApiKeyCreated:
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            key_id=key_id,
            tenant=tenant,
            role=role,
            name=name,
            secret_sha256=_sha256(secret),
            created_at=datetime.now(UTC),
        )
        await self._sidecar.save_state(self._store, f"apikey:{key_id}", record.model_dump(mode="json"))
        for _ in range(_INDEX_ATTEMPTS):
            ids, etag = await self._index(tenant)
            try:
                await self._sidecar.save_state(self._store, f"apikeys:{tenant}", [*ids, key_id], etag=etag)
                break
            except EtagMismatchError:
                continue
        else:
            raise ApiError(503, "busy", "the key index kept changing; try again")
        info = ApiKeyInfo.model_validate(record.model_dump(exclude={"secret_sha256"}))
        return ApiKeyCreated(**info.model_dump(), key=f"lore_{key_id}_{secret}")

    async def keys(self, tenant: str) -> list[ApiKeyInfo]:
        ids, _ = await self._index(tenant)
        records = [await self._get(key_id) for key_id in ids]
        return [
            ApiKeyInfo.model_validate(r.model_dump(exclude={"secret_sha256"}))
            for r in records
            if r is not None
        ]

    async def revoke(self, tenant: str, key_id: str) -> ApiKeyInfo:
        record = await self._get(key_id) if re.fullmatch(r"[0-9a-f]{16}", key_id) else None
        if record is None or record.tenant != tenant:
            # Another tenant's key is reported as missing: its existence is not for this caller.
            raise ApiError(404, "not_found", f"no key `{key_id}` in tenant `{tenant}`")
        if record.revoked_at is None:
            record = record.model_copy(update={"revoked_at": datetime.now(UTC)})
            await self._sidecar.save_state(self._store, f"apikey:{key_id}", record.model_dump(mode="json"))
        return ApiKeyInfo.model_validate(record.model_dump(exclude={"secret_sha256"}))

    async def _get(self, key_id: str) -> ApiKeyRecord | None:
        value, _ = await self._sidecar.get_state(self._store, f"apikey:{key_id}")
        return None if value is None else ApiKeyRecord.model_validate(value)

    async def _index(self, tenant: str) -> tuple[list[str], str | None]:
        value, etag = await self._sidecar.get_state(self._store, f"apikeys:{tenant}")
        return (list(value) if value else []), etag


class RateLimiter:
    """Per-key moving-window limit, counted in Redis (shared by all gateway replicas)."""

    def __init__(self, storage: RedisStorage, limit: str) -> None:
        self._item: RateLimitItem = parse(limit)
        self._limiter = MovingWindowRateLimiter(storage)

    async def check(self, key_id: str) -> None:
        """Counts one call; raises 429 with the seconds until a slot frees when over the limit."""
        if await self._limiter.hit(self._item, key_id):
            return
        stats = await self._limiter.get_window_stats(self._item, key_id)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"more than {self._item} calls for this key; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )


def redis_storage(url: str, password: str | None) -> RedisStorage:
    """A `limits` storage on the Redis at ``url`` (redis-py's asyncio client, already a dependency)."""
    if password:
        return RedisStorage(
            f"async+{url}", implementation="redispy", key_prefix="lore-ratelimit", password=password
        )
    return RedisStorage(f"async+{url}", implementation="redispy", key_prefix="lore-ratelimit")


async def authenticate(request: Request) -> Principal:
    """The caller of a `/v1` route, from its bearer key; 401 without a valid key, 429 over its limit."""
    state = request.app.state
    if not state.settings.auth_required:
        return Principal(key_id="anonymous", tenant=None, role=Role.ADMIN, operator=True)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthenticated",
            "send an API key as `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    keys = cast(KeyStore, state.keys)
    principal = await keys.authenticate(token.strip())
    if principal is None:
        raise ApiError(
            401,
            "unauthenticated",
            "the API key is unknown or revoked",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limiter = cast(RateLimiter | None, state.rate_limiter)
    if limiter is not None:
        await limiter.check(principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]
