"""`lore_core.retriever.LoreRetriever` passes LangChain's standard retriever tests (langchain-tests)
against the real RediSearch module, with the real embedding model, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from lore_core.embeddings import MiniLMEmbeddings
from lore_core.index import Chunk, VectorIndex, redis_client
from lore_core.retriever import LoreRetriever
from lore_core.search import IndexLayout, IndexOptions, parse_metadata_fields
from lore_stack.redis_server import RedisServer
from lore_stack.stack import free_port

pytestmark = pytest.mark.integration

OPTIONS = IndexOptions(metadata=parse_metadata_fields("year:numeric"))
TEXTS = [
    ("hip", "The hip is a ball-and-socket joint that connects the leg to the pelvis.", 2021),
    ("knee", "The knee is a hinge joint between the thigh bone and the shin bone.", 2022),
    ("shoulder", "The shoulder joint has the widest range of motion of any joint.", 2023),
    ("router", "The Northwind Aero Router supports mesh roaming.", 2024),
    ("leave", "Staff accrue two and a half days of paid leave per month.", 2025),
]


@pytest.fixture(scope="module")
def embeddings() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


@pytest.fixture(scope="module")
def index_url(tmp_path_factory: pytest.TempPathFactory, embeddings: MiniLMEmbeddings) -> Iterator[str]:
    server = RedisServer(port=free_port(), data_dir=tmp_path_factory.mktemp("redis-langchain"))
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"

    async def fill() -> None:
        client = redis_client(url, None)
        index = VectorIndex(
            client,
            name="lc-chunks",
            prefix="lc:chunk:",
            dimension=embeddings.dimension,
            manifest_prefix="lc:manifest:",
            options=OPTIONS,
        )
        await index.ensure()
        vectors = embeddings.embed([text for _, text, _ in TEXTS])
        for (doc, text, year), vector in zip(TEXTS, vectors, strict=True):
            await index.replace_document(
                tenant="acme",
                document_id=doc,
                title=doc,
                source=None,
                chunks=[Chunk(text=text, index=0)],
                vectors=np.asarray([vector]),
                revision=doc,
                sequence=1,
                metadata={"year": year},
            )
        await client.aclose()

    asyncio.run(fill())
    yield url
    server.stop()


class TestLoreRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _index(self, index_url: str, embeddings: MiniLMEmbeddings) -> None:
        self._url = index_url
        self._embeddings = embeddings

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return LoreRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {
            "redis_url": self._url,
            "layout": _layout(self._embeddings),
            "embeddings": self._embeddings,
            "tenant": "acme",
        }

    @property
    def retriever_query_example(self) -> str:
        return "Which joint connects the leg to the pelvis?"


def _layout(embeddings: MiniLMEmbeddings) -> IndexLayout:
    return IndexLayout.of("lc-chunks", "lc:chunk:", embeddings.dimension, OPTIONS)


def test_sync_and_async_paths_rank_alike_and_take_filters(
    index_url: str, embeddings: MiniLMEmbeddings
) -> None:
    retriever = LoreRetriever(
        redis_url=index_url, layout=_layout(embeddings), embeddings=embeddings, tenant="acme", k=2
    )
    query = "Which joint connects the leg to the pelvis?"
    sync = retriever.invoke(query)
    assert [d.metadata["document_id"] for d in sync] == [
        d.metadata["document_id"] for d in asyncio.run(retriever.ainvoke(query))
    ]
    assert sync[0].metadata["document_id"] == "hip"
    recent = retriever.invoke(query, filters={"metadata": {"year": {"gte": 2023}}}, mode="vector")
    assert {d.metadata["document_id"] for d in recent} <= {"shoulder", "router", "leave"}
    assert recent[0].metadata["mode"] == "vector"


async def test_the_sync_path_works_inside_a_running_loop(
    index_url: str, embeddings: MiniLMEmbeddings
) -> None:
    retriever = LoreRetriever(
        redis_url=index_url, layout=_layout(embeddings), embeddings=embeddings, tenant="acme", k=1
    )
    assert [d.metadata["document_id"] for d in retriever.invoke("paid leave")] == ["leave"]


def test_another_tenant_sees_nothing(index_url: str, embeddings: MiniLMEmbeddings) -> None:
    retriever = LoreRetriever(
        redis_url=index_url, layout=_layout(embeddings), embeddings=embeddings, tenant="other"
    )
    assert retriever.invoke("hip joint") == []
