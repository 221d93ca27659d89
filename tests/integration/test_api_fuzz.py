"""Property-based fuzzing of the public API from the gateway's own live OpenAPI (schemathesis).

Every `/v1` operation gets generated valid and invalid requests (bodies, paths, queries); each
answer must be no 5xx, a status the OpenAPI document lists for that operation, with a body and
content type that conform to it. The stateful run follows the OpenAPI links of the document
(`POST /v1/documents` -> `GET`/`DELETE /v1/documents/{tenant}/{document_id}`, `POST /v1/jobs` ->
`GET`/`DELETE /v1/jobs/{job_id}`, `POST /v1/keys` -> `DELETE /v1/keys/{key_id}`), so resources the
fuzzer made are read and removed again, as a client would.

Calls are made with an admin key of a tenant of their own (`fuzz`), so the documents and jobs they
make stay out of the tenants other tests read. Runs are bounded and derandomized (the same
examples every run), so CI sees the same requests each time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case, GenerationMode, Response
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.generation.stateful.state_machine import APIStateMachine
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lore_stack.stack import Stack
from tests.integration.helpers import gateway_auth

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FUZZ_TENANT = "fuzz"
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Bounded so both tests together take ~2-3 minutes on the 2-core CI machine.
EXAMPLES_PER_OPERATION = 25
STATEFUL_SCENARIOS = 40
TIMEOUT = 60


@pytest.fixture(scope="module")
def fuzz_key(stack: Stack) -> str:
    """An admin key of the tenant `fuzz` (made once through `POST /v1/keys` by the operator key)."""
    return gateway_auth(stack).key(FUZZ_TENANT)


@pytest.fixture(scope="module")
def api(stack: Stack) -> BaseSchema:
    """The gateway's live OpenAPI document, limited to the public `/v1` routes."""
    # An explicit config: nothing is read from a `schemathesis.toml` the working directory may hold.
    config = schemathesis.Config()
    schema = schemathesis.openapi.from_url(
        f"{stack.url('lore-gateway')}/openapi.json", config=config, timeout=TIMEOUT
    )
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES_PER_OPERATION,
        deterministic=True,
        database="none",
    )
    # Only the document's own links: links schemathesis infers from list answers (`GET /v1/jobs` ->
    # `jobs[].job_id`) change with the live data between Hypothesis' replays of a scenario, which
    # Hypothesis then refuses as an inconsistent strategy (FlakyStrategyDefinition).
    schema.config.phases.stateful.inference.algorithms = []
    return schema.include(path_regex="^/v1/")


# The operations of the committed contract (tests/unit/test_published_contracts.py keeps it equal to
# the code), so each has its own test id; the cases come from the live document. Not
# `schemathesis.pytest.from_fixture`: it sets `Function._nodeid`, which pytest 9.2 no longer has
# (schemathesis 4.32.5 pytest/lazy.py:212).
OPERATIONS = [
    (method.upper(), path)
    for path, item in json.loads((ROOT / "contracts" / "openapi.json").read_text())["paths"].items()
    if path.startswith("/v1/")
    for method in item
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_within_its_contract(
    api: BaseSchema, fuzz_key: str, method: str, path: str
) -> None:
    operation = api[path][method]
    cases = st.one_of([operation.as_strategy(mode) for mode in GenerationMode])

    @hypothesis.given(case=cases)
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        # No shrinking: on a live stack it costs minutes; the report shows the failing request.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def answers_within_contract(case: Case[Any]) -> None:
        case.call_and_validate(
            headers={"authorization": f"Bearer {fuzz_key}"}, checks=CHECKS, timeout=TIMEOUT
        )

    answers_within_contract()


def test_linked_operations_keep_their_contract_across_a_workflow(api: BaseSchema, fuzz_key: str) -> None:
    """Stateful: sequences of calls joined by the document's OpenAPI links (see the module doc)."""
    links = [
        name
        for path, item in api.raw_schema["paths"].items()
        for op in item.values()
        if isinstance(op, dict)
        for response in op.get("responses", {}).values()
        for name in response.get("links", {})
    ]
    assert len(links) >= 5, f"the gateway's OpenAPI lost its links: {links}"
    machine: type[APIStateMachine] = api.as_state_machine()

    class Workflow(machine):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"headers": {"authorization": f"Bearer {fuzz_key}"}, "timeout": TIMEOUT}

        def validate_response(
            self,
            response: Response,
            case: Case[Any],
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=6,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
