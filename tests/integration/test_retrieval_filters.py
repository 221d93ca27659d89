"""Metadata, source and collection filters against the real RediSearch module, written through
Lore's own write path (`VectorIndex.replace_document`) and read through `VectorIndex.search`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest

from lore_core.contracts import Filters
from lore_core.index import Chunk, VectorIndex, redis_client
from lore_core.search import FilterError, IndexOptions, Mode, SearchRequest, parse_metadata_fields
from lore_stack.redis_server import RedisServer
from lore_stack.stack import free_port

pytestmark = pytest.mark.integration

DIM = 8
OPTIONS = IndexOptions(metadata=parse_metadata_fields("lang:tag, year:numeric, published:numeric, draft:tag"))
DOCS: list[tuple[str, str, str | None, dict[str, str | int | float | bool]]] = [
    ("en-2023", "acme", "https://x.test/a,b?q=1", {"lang": "en", "year": 2023, "collection": "Manuals"}),
    ("fr-2024", "acme", "/docs/fr.md", {"lang": "fr", "year": 2024, "published": "2024-05-01T00:00:00Z"}),
    ("de-2025", "acme", None, {"lang": "de", "year": 2025.5, "draft": True, "collection": "Policies"}),
    # Not a number in a numeric field: indexed all the same, without that field.
    ("bad-year", "acme", None, {"lang": "en", "year": "unknown"}),
    ("other-en", "other", "https://x.test/a,b?q=1", {"lang": "en", "year": 2023, "collection": "Manuals"}),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), data_dir=tmp_path_factory.mktemp("redis-filters"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def index(server: RedisServer) -> AsyncIterator[VectorIndex]:
    client = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
    index = VectorIndex(
        client,
        name="f-chunks",
        prefix="f:chunk:",
        dimension=DIM,
        manifest_prefix="f:manifest:",
        options=OPTIONS,
    )
    await index.ensure()
    for n, (doc, tenant, source, metadata) in enumerate(DOCS):
        vector = np.ones((1, DIM), dtype=np.float32)
        vector[0, n % DIM] += 1.0
        await index.replace_document(
            tenant=tenant,
            document_id=doc,
            title=doc,
            source=source,
            chunks=[Chunk(text=f"manual for the router {doc}", index=0)],
            vectors=vector,
            revision=doc,
            sequence=1,
            metadata=metadata,
        )
    yield index
    await client.aclose()


async def _ids(index: VectorIndex, filters: dict[str, Any] | None, mode: Mode = Mode.VECTOR) -> set[str]:
    request = SearchRequest(
        tenant="acme",
        question="router manual",
        vector=np.ones(DIM, dtype=np.float32),
        mode=mode,
        k=20,
        filters=Filters.model_validate(filters) if filters is not None else None,
    )
    return {m.document_id for m in await index.search(request)}


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (None, {"en-2023", "fr-2024", "de-2025", "bad-year"}),
        ({"metadata": {"lang": "en"}}, {"en-2023", "bad-year"}),
        ({"metadata": {"lang": ["fr", "de"]}}, {"fr-2024", "de-2025"}),
        ({"metadata": {"lang": "EN"}}, set()),
        ({"metadata": {"year": 2024}}, {"fr-2024"}),
        ({"metadata": {"year": [2023, 2025.5]}}, {"en-2023", "de-2025"}),
        ({"metadata": {"year": {"gte": 2024}}}, {"fr-2024", "de-2025"}),
        ({"metadata": {"year": {"gt": 2023, "lt": 2025}}}, {"fr-2024"}),
        ({"metadata": {"year": {"lte": 2024}, "lang": "en"}}, {"en-2023"}),
        ({"metadata": {"published": {"gte": "2024-04-30", "lt": "2024-05-02T00:00:00+00:00"}}}, {"fr-2024"}),
        ({"metadata": {"draft": True}}, {"de-2025"}),
        ({"source": "https://x.test/a,b?q=1"}, {"en-2023"}),
        ({"source": ["/docs/fr.md", "nowhere"]}, {"fr-2024"}),
        ({"collection": "Manuals"}, {"en-2023"}),
        ({"collection": ["Policies", "Manuals"], "metadata": {"lang": "de"}}, {"de-2025"}),
        ({"document_id": ["bad-year", "other-en"]}, {"bad-year"}),
    ],
)
async def test_filters_select_chunks_in_every_mode(
    index: VectorIndex, filters: dict[str, Any] | None, expected: set[str], mode: Mode
) -> None:
    assert await _ids(index, filters, mode) == expected


async def test_a_non_numeric_value_of_a_numeric_field_does_not_break_indexing(
    index: VectorIndex, server: RedisServer
) -> None:
    with server.client() as client:
        info = client.ft("f-chunks").info()
        assert int(info["hash_indexing_failures"]) == 0
        assert client.hget("f:chunk:acme:bad-year:0", "meta_year") is None
        assert client.hget("f:chunk:acme:fr-2024:0", "meta_published") == b"1714521600.0"
    assert "bad-year" in await _ids(index, {"metadata": {"lang": "en"}})


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"metadata": {"colour": "red"}}, "filters.metadata.colour"),
        ({"metadata": {"lang": {"gte": 1}}}, "filters.metadata.lang"),
        ({"metadata": {"year": "2024"}}, "filters.metadata.year"),
        ({"metadata": {"year": ["2024", 2025]}}, "filters.metadata.year"),
    ],
)
async def test_filters_that_do_not_fit_the_schema_are_refused_naming_the_field(
    index: VectorIndex, filters: dict[str, Any], field: str
) -> None:
    with pytest.raises(FilterError) as caught:
        await _ids(index, filters)
    assert [f for f, _ in caught.value.problems] == [field]


def test_changing_the_declared_fields_rebuilds_the_index(server: RedisServer) -> None:
    async def ensure(options: IndexOptions) -> None:
        client = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
        try:
            index = VectorIndex(
                client,
                name="g-chunks",
                prefix="g:chunk:",
                dimension=DIM,
                manifest_prefix="g:m:",
                options=options,
            )
            await index.ensure()
        finally:
            await client.aclose()

    asyncio.run(ensure(IndexOptions()))
    asyncio.run(ensure(IndexOptions(metadata=parse_metadata_fields("team:tag"))))
    with server.client() as client:
        names = {str(a[1]) for a in client.ft("g-chunks").info()["attributes"]}
    assert {"meta_team", "meta_collection", "source"} <= names
