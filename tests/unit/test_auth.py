"""The rules of `lore_gateway.auth` that need no sidecar: roles, tenant scoping, key format."""

from __future__ import annotations

import pytest

from lore_core.contracts import AnswerIn, DocumentIn
from lore_core.http import ApiError
from lore_gateway.auth import _TOKEN, Principal, Role
from lore_gateway.routes.v1 import _scoped

ALPHA_WRITER = Principal(key_id="0123456789abcdef", tenant="alpha", role=Role.WRITER)


def test_a_body_without_a_tenant_takes_the_keys() -> None:
    document = _scoped(DocumentIn(text="hello"), ALPHA_WRITER, Role.WRITER)
    assert document.tenant == "alpha"
    assert document.document_id() == DocumentIn(tenant="alpha", text="hello").document_id()


def test_a_body_naming_the_keys_tenant_passes() -> None:
    assert _scoped(AnswerIn(question="q", tenant="alpha"), ALPHA_WRITER, Role.READER).tenant == "alpha"


@pytest.mark.parametrize("tenant", ["beta", "default"])
def test_a_body_naming_another_tenant_is_refused(tenant: str) -> None:
    with pytest.raises(ApiError) as refused:
        _scoped(DocumentIn(text="x", tenant=tenant), ALPHA_WRITER, Role.WRITER)
    assert refused.value.status_code == 403
    assert refused.value.code == "forbidden_tenant"


def test_the_default_tenant_named_explicitly_is_another_tenant() -> None:
    # `tenant` defaults to "default" in the contracts; only an explicit value counts as a request.
    with pytest.raises(ApiError):
        ALPHA_WRITER.scope("default")
    assert ALPHA_WRITER.scope(None) == "alpha"


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        (Role.READER, Role.READER, True),
        (Role.READER, Role.WRITER, False),
        (Role.WRITER, Role.WRITER, True),
        (Role.WRITER, Role.ADMIN, False),
        (Role.ADMIN, Role.WRITER, True),
    ],
)
def test_roles_are_ordered(role: Role, needed: Role, allowed: bool) -> None:
    principal = Principal(key_id="k", tenant="t", role=role)
    if allowed:
        principal.require(needed)
    else:
        with pytest.raises(ApiError) as refused:
            principal.require(needed)
        assert refused.value.status_code == 403


def test_with_authentication_off_the_request_names_the_tenant() -> None:
    anyone = Principal(key_id="anonymous", tenant=None, role=Role.ADMIN)
    assert anyone.scope("beta") == "beta"
    assert anyone.scope(None) == "default"


@pytest.mark.parametrize(
    "token",
    [
        "lore_0123456789abcdef_" + "a" * 43,
        "lore_0123456789abcdef_" + "A-_9" * 11,
    ],
)
def test_well_formed_keys_parse(token: str) -> None:
    assert _TOKEN.match(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "lore_0123456789ABCDEF_" + "a" * 43,  # the id is lower-case hex
        "lore_0123456789abcde_" + "a" * 43,
        "lore_0123456789abcdef_short",
        "lore_0123456789abcdef_" + "a" * 43 + "\n",
        "lore_0123456789abcdef_" + "a" * 42 + "*",
        "xlore_0123456789abcdef_" + "a" * 43,
    ],
)
def test_malformed_keys_do_not_parse(token: str) -> None:
    assert _TOKEN.match(token) is None
