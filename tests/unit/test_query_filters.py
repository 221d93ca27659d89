"""Retrieval filters: the contract's shape checks, the schema's declared fields, the redisvl
expressions they become, and the metadata values ingestion stores (no Redis)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from lore_core.contracts import Filters, QuestionIn, RetrieveIn
from lore_core.search import (
    FieldKind,
    FilterError,
    IndexLayout,
    MetadataField,
    indexed_metadata,
    parse_metadata_fields,
)
from lore_core.settings import IndexSettings

LAYOUT = IndexLayout(
    name="i", prefix="p:", dimension=4, metadata=parse_metadata_fields("lang:tag,year:numeric,draft:tag")
)


def _expr(filters: dict[str, Any]) -> str:
    return str(LAYOUT.filter_expression(Filters.model_validate(filters)))


def test_declared_fields_parse_with_collection_always_a_tag() -> None:
    assert parse_metadata_fields(" lang:tag , year:numeric ") == (
        MetadataField("collection", FieldKind.TAG),
        MetadataField("lang", FieldKind.TAG),
        MetadataField("year", FieldKind.NUMERIC),
    )
    assert parse_metadata_fields("") == (MetadataField("collection", FieldKind.TAG),)


@pytest.mark.parametrize(
    "spec", ["lang", "lang:text", "1x:tag", "a:tag,a:numeric", "collection:numeric", "a b:tag"]
)
def test_a_malformed_field_declaration_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_metadata_fields(spec)


def test_the_setting_refuses_a_malformed_declaration_at_start_up() -> None:
    with pytest.raises(ValidationError, match="index_metadata_fields"):
        IndexSettings(app_id="x", dapr_api_token="t0ken", app_api_token="t0ken", index_metadata_fields="year")
    settings = IndexSettings(
        app_id="x", dapr_api_token="t0ken", app_api_token="t0ken", index_metadata_fields="year:numeric"
    )
    assert [f.name for f in settings.index_options().metadata] == ["collection", "year"]


def test_the_schema_declares_source_collection_and_metadata_fields() -> None:
    fields = {f["name"]: f for f in LAYOUT.schema().to_dict()["fields"]}
    assert fields["meta_year"]["type"] == "numeric"
    assert fields["meta_lang"]["type"] == "tag"
    assert fields["meta_lang"]["attrs"]["separator"] == "\x1f"
    assert fields["source"]["attrs"]["case_sensitive"] is True
    other = IndexLayout(name="i", prefix="p:", dimension=4, metadata=parse_metadata_fields("lang:tag"))
    assert other.fingerprint() != LAYOUT.fingerprint()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"metadata": {"lang": "en"}}, "@meta_lang:{en}"),
        ({"metadata": {"lang": ["en", "fr"]}}, "@meta_lang:{en|fr}"),
        ({"metadata": {"draft": True}}, "@meta_draft:{1}"),
        ({"metadata": {"year": 2024}}, "@meta_year:[2024 2024]"),
        ({"metadata": {"year": {"gte": 2020, "lt": 2024}}}, "@meta_year:[2020.0 (2024.0]"),
        ({"metadata": {"year": {"gt": 2020}}}, "@meta_year:[(2020.0 inf]"),
        ({"source": "a,b c"}, "@source:{a\\,b\\ c}"),
        ({"collection": "x|y"}, "@meta_collection:{x\\|y}"),
        ({"source": "} | @tenant:{other"}, "@source:{\\}\\ \\|\\ \\@tenant\\:\\{other}"),
    ],
)
def test_conditions_become_escaped_redisvl_expressions(filters: dict[str, Any], expected: str) -> None:
    assert _expr(filters) == expected


def test_conditions_are_anded() -> None:
    assert _expr({"source": "s", "metadata": {"lang": "en"}}) == "(@source:{s} @meta_lang:{en})"
    assert LAYOUT.filter_expression(Filters()) is None
    assert LAYOUT.filter_expression(None) is None


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"metadata": {"colour": "red"}}, "filters.metadata.colour"),
        ({"metadata": {"lang": {"gte": 1}}}, "filters.metadata.lang"),
        ({"metadata": {"year": "2024"}}, "filters.metadata.year"),
    ],
)
def test_conditions_that_do_not_fit_the_schema_name_the_field(filters: dict[str, Any], field: str) -> None:
    with pytest.raises(FilterError) as caught:
        _expr(filters)
    assert [f for f, _ in caught.value.problems] == [field]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"colour": "red"}, "filters.colour"),
        ({"source": ""}, "filters.source"),
        ({"source": []}, "filters.source"),
        ({"source": 3}, "filters.source"),
        ({"collection": ["ok", " "]}, "filters.collection"),
        ({"source": "a\u0000b"}, "filters.source"),
        ({"metadata": {"year": {"gte": 5, "lte": 1}}}, "filters.metadata.year"),
        ({"metadata": {"year": {"gt": 1, "gte": 1}}}, "filters.metadata.year"),
        ({"metadata": {"year": {}}}, "filters.metadata.year"),
        ({"metadata": {"year": {"from": 1}}}, "filters.metadata.year"),
        ({"metadata": {"year": {"gte": "last week"}}}, "filters.metadata.year"),
        ({"metadata": {"year": {"gte": True}}}, "filters.metadata.year"),
        ({"metadata": {"year": None}}, "filters.metadata.year"),
        ({"metadata": {"year": [1, [2]]}}, "filters.metadata.year"),
        ({"metadata": {"lang": ["x"] * 101}}, "filters.metadata.lang"),
        ({"metadata": {f"k{n}": "v" for n in range(33)}}, "filters.metadata"),
    ],
)
def test_malformed_filters_are_refused_naming_the_field(filters: dict[str, Any], field: str) -> None:
    for model in (RetrieveIn, QuestionIn):
        with pytest.raises(ValidationError) as caught:
            model.model_validate({"question": "q", "filters": filters})
        assert {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()} == {field}


def test_filters_survive_the_gateway_to_query_hop() -> None:
    body = {"question": "q", "filters": {"metadata": {"year": {"gte": "2024-01-01"}, "lang": ["en"]}}}
    request = RetrieveIn.model_validate(body)
    assert RetrieveIn.model_validate(request.model_dump(mode="json")) == request
    assert _expr(request.model_dump(mode="json")["filters"]) == (
        "(@meta_year:[1704067200.0 inf] @meta_lang:{en})"
    )


def test_ingestion_stores_numbers_and_dates_and_leaves_out_non_numbers() -> None:
    stored = indexed_metadata(
        LAYOUT.metadata,
        {"year": "2024", "lang": "en", "draft": True, "note": 1.5, "when": "x"},
    )
    assert stored == {
        "meta_year": 2024.0,
        "meta_lang": "en",
        "meta_draft": 1,
        "meta_note": "1.5",
        "meta_when": "x",
    }
    dated = IndexLayout(name="i", prefix="p:", dimension=4, metadata=parse_metadata_fields("at:numeric"))
    assert indexed_metadata(dated.metadata, {"at": "2024-05-01T00:00:00Z"}) == {"meta_at": 1714521600.0}
    assert indexed_metadata(dated.metadata, {"at": "soon"}) == {}
    assert indexed_metadata(dated.metadata, {"at": float("nan")}) == {}
    assert indexed_metadata(dated.metadata, {"at": False}) == {"meta_at": 0}
