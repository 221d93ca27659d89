"""The published contracts (`contracts/`) match the code, and their examples match their schemas.

`scripts/export-contracts.py` regenerates the folder; these tests fail when a model, a topic name or
the gateway's API changed without it.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource

from lore_core import contracts
from lore_core.settings import TopicSettings

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
# A base URI for resolving the relative `$ref`s (`./schemas/X.json`) of the AsyncAPI document.
BASE = "https://lore.invalid/contracts/"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def exporter() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "export_contracts", ROOT / "scripts" / "export-contracts.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def asyncapi() -> dict[str, Any]:
    """`contracts/asyncapi.yaml`, parsed once (callers do not change it)."""
    document: dict[str, Any] = yaml.load((CONTRACTS / "asyncapi.yaml").read_text(), Loader=_LOADER)
    return document


@cache
def _registry() -> Registry[Any]:
    resources = [
        (f"{BASE}schemas/{path.name}", Resource.from_contents(json.loads(path.read_text())))
        for path in sorted((CONTRACTS / "schemas").glob("*.json"))
    ]
    return Registry().with_resources(resources)


def message_validator(message: str) -> jsonschema.protocols.Validator:
    """A validator of the payload (the CloudEvent as delivered) of an AsyncAPI message of
    `contracts/asyncapi.yaml`, resolving its references to `contracts/schemas/`."""
    payload = asyncapi()["components"]["messages"][message]["payload"]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE}asyncapi.yaml",
        **payload,
    }
    validator = jsonschema.Draft202012Validator(
        schema, registry=_registry(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator


def test_committed_contracts_match_the_code() -> None:
    problems = exporter().drift(CONTRACTS)
    assert problems == [], (
        "contracts/ differs from the code; run `.venv/bin/python scripts/export-contracts.py`:\n"
        + "\n".join(problems)
    )


def test_every_wire_model_has_a_schema() -> None:
    names = {p.stem for p in (CONTRACTS / "schemas").glob("*.json")}
    for required in ("QueuedDocument", "DeadLetter", "DocumentStatus", "AnswerIn", "Answer", "DocumentEvent"):
        assert required in names
    assert names == set(exporter().wire_models())


@pytest.mark.parametrize("path", sorted((CONTRACTS / "schemas").glob("*.json")), ids=lambda p: p.stem)
def test_each_schema_is_a_valid_json_schema(path: Path) -> None:
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == path.stem


def test_asyncapi_names_the_configured_topics() -> None:
    topics = TopicSettings.model_construct()
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        topics.ingest_topic,
        topics.dead_letter_topic,
        topics.exhausted_topic,
        topics.events_topic,
    }
    events = next(c for c in document["channels"].values() if c["address"] == topics.events_topic)
    kinds = {
        document["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]["name"]
        for ref in events["messages"].values()
    }
    assert kinds == {"document.indexed", "document.failed", "document.deleted", "job.finished"}


def _examples() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, example)
        for name, message in asyncapi()["components"]["messages"].items()
        for example in message.get("examples", [])
    ]


@pytest.mark.parametrize(
    ("message", "example"), _examples(), ids=lambda v: v if isinstance(v, str) else v["name"]
)
def test_asyncapi_examples_are_valid_against_their_message_schema(
    message: str, example: dict[str, Any]
) -> None:
    errors = [e.message for e in message_validator(message).iter_errors(example["payload"])]
    assert errors == []


def test_asyncapi_examples_are_accepted_by_the_models() -> None:
    messages = asyncapi()["components"]["messages"]
    for name, model in (
        ("QueuedDocument", contracts.QueuedDocument),
        ("ExhaustedDocument", contracts.QueuedDocument),
        ("DeadLetter", contracts.DeadLetter),
    ):
        for example in messages[name]["examples"]:
            model.model_validate(example["payload"]["data"])
    for name in ("DocumentIndexed", "DocumentFailed", "DocumentDeleted"):
        for example in messages[name]["examples"]:
            event = contracts.DocumentEvent.model_validate(example["payload"])
            assert event.type == messages[name]["name"]
    for example in messages["JobFinished"]["examples"]:
        contracts.JobEvent.model_validate(example["payload"])


@pytest.mark.parametrize(
    ("message", "payload_change"),
    [
        ("QueuedDocument", {"data": {"text": "x", "txt": "typo"}}),  # unknown field
        ("QueuedDocument", {"data": {"title": "no text"}}),  # text is required
        ("QueuedDocument", {"data": {"text": "x", "tenant": "Not A Tenant"}}),  # pattern
        ("DocumentIndexed", {"type": "document.failed"}),  # another kind of event
        ("DocumentIndexed", {"data": {"document_id": "d", "tenant": "t", "state": "gone"}}),  # not a state
        ("DeadLetter", {"data": {"topic": "lore.documents"}}),  # no reason
    ],
)
def test_schemas_refuse_what_lore_refuses(message: str, payload_change: dict[str, Any]) -> None:
    example = asyncapi()["components"]["messages"][message]["examples"][0]["payload"]
    assert message_validator(message).is_valid(example)
    assert not message_validator(message).is_valid({**example, **payload_change})


def test_openapi_is_the_gateways_and_valid() -> None:
    document = json.loads((CONTRACTS / "openapi.json").read_text())
    validate_openapi(document)  # against the OpenAPI meta-schema of its version (3.1)
    for path in ("/v1/documents", "/v1/documents/{tenant}/{document_id}", "/v1/answers"):
        assert path in document["paths"]


def test_readme_points_at_every_contract() -> None:
    readme = (CONTRACTS / "README.md").read_text()
    topics = TopicSettings.model_construct()
    for name in ("asyncapi.yaml", "openapi.json", "schemas/", "scripts/export-contracts.py"):
        assert name in readme
    for topic in (topics.ingest_topic, topics.dead_letter_topic, topics.events_topic):
        assert topic in readme
    for kind in ("document.indexed", "document.failed", "document.deleted", "job.finished"):
        assert kind in readme
