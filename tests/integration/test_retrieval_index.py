"""`ensure_index` rebuilds an index made with another schema and keeps its chunks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from redis.commands.search.field import TagField, TextField
from redis.commands.search.index_definition import IndexDefinition, IndexType

from lore_core.index import redis_client
from lore_core.search import IndexLayout, ensure_index
from lore_stack.redis_server import RedisServer
from lore_stack.stack import free_port

pytestmark = pytest.mark.integration


def test_an_index_of_an_older_schema_is_rebuilt_in_place(tmp_path: Path) -> None:
    server = RedisServer(port=free_port(), data_dir=tmp_path)
    server.start()
    layout = IndexLayout(name="lore-chunks", prefix="lore:chunk:", dimension=4)
    try:
        client = server.client()
        # As an older Lore made it: default stop words, no vector field, no fingerprint.
        client.ft(layout.name).create_index(
            [TagField("tenant"), TextField("text")],
            definition=IndexDefinition(prefix=[layout.prefix], index_type=IndexType.HASH),
        )
        client.hset(
            "lore:chunk:acme:doc:0",
            mapping={
                "tenant": "acme",
                "document_id": "doc",
                "title": "t",
                "chunk": 0,
                "text": "is an inverse",
                "embedding": np.ones(4, dtype=np.float32).tobytes(),
            },
        )

        async def ensure() -> tuple[bool, bool]:
            aio = redis_client(f"redis://127.0.0.1:{server.port}/0", None)
            try:
                return await ensure_index(aio, layout), await ensure_index(aio, layout)
            finally:
                await aio.aclose()

        assert asyncio.run(ensure()) == (True, False)
        info = client.ft(layout.name).info()
        assert {str(a[1]) for a in info["attributes"]} >= {"tenant", "title", "text", "embedding"}
        # STOPWORDS 0: "is" is a real term now, and the chunk written before the rebuild is found.
        for _ in range(50):
            if client.ft(layout.name).search("@text:(is)").total == 1:
                break
            time.sleep(0.1)
        assert client.ft(layout.name).search("@text:(is)").total == 1
        client.close()
    finally:
        server.kill()
