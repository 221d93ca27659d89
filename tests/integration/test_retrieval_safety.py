"""No question can crash Redis: generated questions through every retrieval mode, real RediSearch.

redis-server 8.2.3 + RediSearch 2.10.5 segfaults on a DIALECT 2 union in which two stop words come
before a real term (`(is|an|inverse)`). `lore_core.search` has two independent guards (an index
without stop words, and query terms without stop words or syntax); each is tested on its own here,
against throwaway servers, and the raw query is shown to still crash this build so that the tests
are known to be able to fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis.commands.search.index_definition import IndexDefinition, IndexType

from lore_core.embeddings import MiniLMEmbeddings
from lore_core.index import redis_client
from lore_core.search import (
    QUERY_STOPWORDS,
    ChunkSearch,
    IndexLayout,
    Mode,
    SearchRequest,
    Tuning,
    ensure_index,
    query_terms,
)
from lore_stack.redis_server import RedisServer
from lore_stack.stack import free_port

pytestmark = pytest.mark.integration

CRASHING = ["(is|an|inverse)", "(a|the|hip)"]
SENTENCES = [
    "There is an inverse relationship between price and demand",
    "is an inverse",
    "a the hip",
    "The hip is a joint",
    "Is it the one that is not an inverse?",
]
CHUNKS = [
    ("hip", "The hip joint", "The hip is a ball-and-socket joint that connects the leg to the pelvis."),
    ("demand", "Demand", "There is an inverse relationship between price and the quantity demanded."),
    ("codes", "Product codes", "Model XR-7 (code XR7-2000) ships with firmware 4.2; the é café is open."),
]
# Query syntax, modifiers and tokens the DIALECT 2 lexer knows, mixed with stop words.
SYNTAX = [
    *sorted(QUERY_STOPWORDS),
    "(",
    ")",
    "|",
    "@",
    "@text:",
    "{",
    "}",
    "[",
    "]",
    "*",
    "%",
    "%%",
    "-",
    "~",
    "=>",
    "$",
    "$vec",
    ":",
    '"',
    "'",
    "\\",
    ";",
    "inf",
    "-inf",
    "+inf",
    "1e5",
    "0x1f",
    "nan",
    "ismissing",
    "KNN",
    "AS",
    "=>[KNN 10 @embedding $vec]",
    "@tenant:{other}",
    "inverse",
    "hip",
    "\uff29\uff33",  # full-width "IS"
    "İs",
    "ǅ",
    "ﬁ",
    "\u00a0",
    "\u200b",
]
SEPARATORS = [" ", "|", " | ", ",", "\t", "\n", "", "(", ")"]


def _questions() -> st.SearchStrategy[str]:
    token = st.one_of(st.sampled_from(SYNTAX), st.text(max_size=12))
    pieces = st.lists(st.tuples(token, st.sampled_from(SEPARATORS)), min_size=1, max_size=30)
    return pieces.map(lambda parts: "".join(t + s for t, s in parts))


def _server(tmp_path: Path) -> RedisServer:
    server = RedisServer(port=free_port(), data_dir=tmp_path)
    server.start()
    return server


def _fill(client: redis.Redis, layout: IndexLayout, embeddings: MiniLMEmbeddings) -> None:
    vectors = embeddings.embed([text for _, _, text in CHUNKS])
    for (doc, title, text), vector in zip(CHUNKS, vectors, strict=True):
        for tenant in ("acme", "other"):
            client.hset(
                f"{layout.prefix}{tenant}:{doc}:0",
                mapping={
                    "tenant": tenant,
                    "document_id": doc,
                    "title": title,
                    "source": "",
                    "chunk": 0,
                    "text": text,
                    "embedding": np.asarray(vector, dtype=np.float32).tobytes(),
                },
            )


@pytest.fixture(scope="module")
def embeddings() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = _server(tmp_path_factory.mktemp("redis-safety"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def layouts(
    server: RedisServer, embeddings: MiniLMEmbeddings, loop: asyncio.AbstractEventLoop
) -> list[IndexLayout]:
    """Lore's own index (no stop words) and one made elsewhere with RediSearch's default stop words."""
    lore = IndexLayout(name="lore-chunks", prefix="lore:chunk:", dimension=embeddings.dimension)
    foreign = IndexLayout(name="foreign-chunks", prefix="foreign:chunk:", dimension=embeddings.dimension)

    async def create() -> None:
        client = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
        await ensure_index(client, lore)
        definition = IndexDefinition(prefix=[foreign.prefix], index_type=IndexType.HASH)
        await client.ft(foreign.name).create_index(foreign.schema().redis_fields, definition=definition)
        await client.aclose()

    loop.run_until_complete(create())
    with server.client() as client:
        _fill(client, lore, embeddings)
        _fill(client, foreign, embeddings)
    return [lore, foreign]


def _search_everywhere(
    server: RedisServer,
    layouts: list[IndexLayout],
    embeddings: MiniLMEmbeddings,
    loop: asyncio.AbstractEventLoop,
    question: str,
    *,
    mmr_too: bool = False,
) -> None:
    vector = embeddings.embed([question])[0]

    async def run() -> None:
        client = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
        try:
            for layout in layouts:
                search = ChunkSearch(client, layout)
                for mode in Mode:
                    for mmr in (False, True) if mmr_too else (False,):
                        request = SearchRequest(
                            tenant="acme", question=question, vector=vector, mode=mode, k=3, mmr=mmr
                        )
                        for match in await search.run(request):
                            assert match.key.startswith(f"{layout.prefix}acme:")
        finally:
            await client.aclose()

    loop.run_until_complete(run())
    assert server.running(), f"redis-server died (exit {server.returncode()}) on {question!r}"
    with server.client() as client:
        assert client.ping()


@pytest.mark.parametrize("question", CRASHING + SENTENCES)
def test_questions_that_crash_a_raw_union_leave_redis_up_in_every_mode(
    server: RedisServer,
    layouts: list[IndexLayout],
    embeddings: MiniLMEmbeddings,
    loop: asyncio.AbstractEventLoop,
    question: str,
) -> None:
    _search_everywhere(server, layouts, embeddings, loop, question, mmr_too=True)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(question=_questions())
@example(question="There is an inverse relationship between supply and demand")
@example(question="(is|an|inverse)")
def test_generated_questions_never_take_redis_down(
    server: RedisServer,
    layouts: list[IndexLayout],
    embeddings: MiniLMEmbeddings,
    loop: asyncio.AbstractEventLoop,
    question: str,
) -> None:
    _search_everywhere(server, layouts, embeddings, loop, question)


def test_text_mode_finds_the_real_term_behind_stop_words(
    server: RedisServer,
    layouts: list[IndexLayout],
    embeddings: MiniLMEmbeddings,
    loop: asyncio.AbstractEventLoop,
) -> None:
    vector = embeddings.embed(["is an inverse"])[0]

    async def run() -> list[str]:
        client = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
        try:
            request = SearchRequest(
                tenant="acme", question="is an inverse", vector=vector, mode=Mode.TEXT, k=3
            )
            return [m.document_id for m in await ChunkSearch(client, layouts[0]).run(request)]
        finally:
            await client.aclose()

    assert loop.run_until_complete(run()) == ["demand"]


def test_an_index_without_stop_words_survives_the_raw_crashing_union(
    server: RedisServer, layouts: list[IndexLayout]
) -> None:
    """The server-side guard alone: Lore's index has no stop words, so the raw query is harmless."""
    with server.client() as client:
        for raw in CRASHING:
            client.execute_command("FT.SEARCH", layouts[0].name, raw, "DIALECT", 2)
        assert client.ping()


def test_the_raw_union_still_crashes_this_redisearch_build(tmp_path: Path) -> None:
    """The hazard the guards exist for, on a throwaway server: an index with RediSearch's default
    stop words dies on `(is|an|inverse)` with DIALECT 2. If this starts failing, the module was
    fixed upstream and the guards are belt and braces."""
    server = _server(tmp_path)
    try:
        client = server.client()
        # Skip the memory test redis-server runs after a crash: it only slows this test down.
        client.config_set("crash-memcheck-enabled", "no")
        client.execute_command(
            "FT.CREATE", "idx", "ON", "HASH", "PREFIX", "1", "d:", "SCHEMA", "text", "TEXT"
        )
        client.hset("d:1", "text", "an inverse relationship")
        with pytest.raises(redis.ConnectionError):
            client.execute_command("FT.SEARCH", "idx", CRASHING[0], "DIALECT", 2)
        client.close()
        assert not server.running()
        assert server.returncode() == -11  # SIGSEGV
    finally:
        server.kill()


def test_query_terms_hold_only_letters_and_digits_and_no_stop_word() -> None:
    assert query_terms("(is|an|inverse)") == ["inverse"]
    assert query_terms("There is an INVERSE relationship?") == ["inverse", "relationship"]
    assert query_terms("\uff29\uff33 XR7-2000") == ["xr7", "2000"]


HOSTILE_TENANTS = [
    "other",
    "acme|other",
    "acme} | @tenant:{other",
    "*",
    "acme*",
    "-acme",
    "acme other",
    "acme\\",
    '"acme"',
    "@tenant:{other}",
    "\uff21\uff23\uff2d\uff25",  # full-width "ACME"
    "acme\u0000",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tenant=st.one_of(st.sampled_from(HOSTILE_TENANTS), st.text(max_size=20)))
def test_no_tenant_value_reads_another_tenants_chunks(
    server: RedisServer,
    layouts: list[IndexLayout],
    embeddings: MiniLMEmbeddings,
    loop: asyncio.AbstractEventLoop,
    tenant: str,
) -> None:
    """Only "acme" and "other" hold chunks: any other value, however crafted, finds nothing or is
    refused; "other" finds only its own."""
    vector = embeddings.embed(["hip joint inverse demand XR7"])[0]

    async def run() -> list[str]:
        client = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
        try:
            keys: list[str] = []
            for mode in Mode:
                request = SearchRequest(
                    tenant=tenant, question="hip joint inverse demand XR7", vector=vector, mode=mode, k=10
                )
                keys += [m.key for m in await ChunkSearch(client, layouts[0]).run(request)]
            return keys
        finally:
            await client.aclose()

    try:
        keys = loop.run_until_complete(run())
    except ValueError as exc:
        assert "invalid tenant" in str(exc)
        return
    assert all(key.startswith(f"{layouts[0].prefix}{tenant}:") for key in keys), (tenant, keys)
    if tenant not in ("acme", "other"):
        assert keys == []


HOSTILE_VALUES = [
    "shared",
    "shared} | @tenant:{other",
    "shared | @tenant:{other}",
    "*",
    "shared*",
    "-shared",
    "-@tenant:{acme}",
    '"shared"',
    "'shared'",
    "{shared}",
    "shared\\",
    "@tenant:{other}",
    "a|b|*",
    "(shared)",
    "$vec",
    "\u00a0",
    "\uff53\uff48\uff41\uff52\uff45\uff44",  # full-width "shared"
    "shared\u0000",
    "shared\u001fother",
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(min_size=1, max_size=30)),
    field=st.sampled_from(["source", "collection", "document_id", "metadata.collection"]),
)
def test_no_filter_value_reads_another_tenants_chunks(
    server: RedisServer,
    layouts: list[IndexLayout],
    embeddings: MiniLMEmbeddings,
    loop: asyncio.AbstractEventLoop,
    value: str,
    field: str,
) -> None:
    """Only tenant "other" holds chunks whose source and collection are hostile values; "acme"
    filtering on any value, however crafted, never gets one of them (and Redis stays up)."""
    from lore_core.contracts import Filters

    layout = layouts[0]
    with server.client() as client:
        for n, hostile in enumerate([*HOSTILE_VALUES[:3], value]):
            client.hset(
                f"{layout.prefix}other:hostile{n}:0",
                mapping={
                    "tenant": "other",
                    "document_id": "hip",
                    "title": "The hip joint",
                    "source": hostile,
                    "meta_collection": hostile,
                    "chunk": 0,
                    "text": "The hip is a ball-and-socket joint; shared.",
                    "embedding": np.asarray(embeddings.embed(["hip"])[0], dtype=np.float32).tobytes(),
                },
            )
    try:
        raw: dict[str, object] = (
            {"metadata": {"collection": value}} if field == "metadata.collection" else {field: value}
        )
        filters = Filters.model_validate(raw)
    except ValueError:
        return  # refused by the contract (an empty or blank value): nothing is queried
    vector = embeddings.embed(["hip joint shared"])[0]

    async def run() -> list[str]:
        client = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
        try:
            keys: list[str] = []
            for mode in Mode:
                request = SearchRequest(
                    tenant="acme",
                    question="hip joint shared",
                    vector=vector,
                    mode=mode,
                    k=10,
                    filters=filters,
                )
                keys += [m.key for m in await ChunkSearch(client, layout).run(request)]
            return keys
        finally:
            await client.aclose()

    keys = loop.run_until_complete(run())
    assert all(key.startswith(f"{layout.prefix}acme:") for key in keys), (value, keys)
    assert server.running()


@pytest.mark.parametrize("policy", [None, "BATCHES", "ADHOC_BF"])
def test_every_vector_read_path_ranks_the_same_chunks_of_the_tenant_only(
    server: RedisServer,
    layouts: list[IndexLayout],
    embeddings: MiniLMEmbeddings,
    loop: asyncio.AbstractEventLoop,
    policy: Literal["BATCHES", "ADHOC_BF"] | None,
) -> None:
    """A plain vector query reads no vectors back (similarity = 1 - Redis' cosine distance); with
    MMR it reads them and computes the cosine itself. Both, under every RediSearch policy, give the
    same chunks and similarities, all of the asking tenant."""
    question = "warehouse stock falls when demand rises"
    vector = embeddings.embed([question])[0]

    async def run(mmr: bool) -> list[tuple[str, float]]:
        client = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
        try:
            search = ChunkSearch(client, layouts[0], Tuning(hybrid_policy=policy))
            k = len(CHUNKS)
            request = SearchRequest(
                tenant="acme",
                question=question,
                vector=vector,
                mode=Mode.VECTOR,
                k=k,
                mmr=mmr,
                mmr_lambda=1.0,
            )
            return [(m.key, m.similarity) for m in await search.run(request)]
        finally:
            await client.aclose()

    plain, with_vectors = loop.run_until_complete(run(False)), loop.run_until_complete(run(True))
    assert [key for key, _ in plain] == [key for key, _ in with_vectors]
    assert all(key.startswith(f"{layouts[0].prefix}acme:") for key, _ in plain)
    assert len(plain) == len(CHUNKS)
    for (_, a), (_, b) in zip(plain, with_vectors, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
