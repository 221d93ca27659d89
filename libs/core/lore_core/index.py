"""The Redis vector index of document chunks (RediSearch HNSW + full text).

Redis is reached directly here, not through Dapr (Dapr has no vector-search building block), so
this module carries its own connection policy: bounded socket timeouts and a short exponential
back-off retry on connection errors (`redis_client`).

Key formats:
    `{prefix}{tenant}:{document_id}:{n}`  hash, one chunk: tenant, document_id, title, source,
                                          chunk (n), text, embedding (float32 bytes)
    `lore:doc:{tenant}:{document_id}`     hash, the document manifest: chunks, sha, title
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import redis.asyncio as aioredis
from numpy.typing import NDArray
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.search.field import NumericField, TagField, TextField, VectorField
from redis.commands.search.index_definition import IndexDefinition, IndexType
from redis.commands.search.query import Query
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

MANIFEST_PREFIX = "lore:doc:"
# Optimistic-transaction attempts when concurrent writers touch the same document.
_WATCH_ATTEMPTS = 16


def redis_client(url: str, password: str | None) -> aioredis.Redis:
    """A client with Lore's policy for direct Redis calls: 5 s socket timeout, 3 retries."""
    return aioredis.from_url(
        url,
        password=password or None,
        socket_timeout=5.0,
        socket_connect_timeout=3.0,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=30,
    )


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    index: int


@dataclass(frozen=True, slots=True)
class Hit:
    document_id: str
    title: str
    source: str | None
    chunk: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class WriteResult:
    chunks: int
    unchanged: bool


def _escape_tag(value: str) -> str:
    return "".join("\\" + c if not c.isalnum() else c for c in value)


class VectorIndex:
    """Stores and searches chunk embeddings for many tenants in one RediSearch index.

    Args:
        redis: An asyncio Redis client (see `redis_client`).
        name: The RediSearch index name.
        prefix: The key prefix the index covers.
        dimension: Embedding size (384 for all-MiniLM-L6-v2).
    """

    def __init__(self, redis: aioredis.Redis, *, name: str, prefix: str, dimension: int) -> None:
        self._redis = redis
        self._name = name
        self._prefix = prefix
        self._dimension = dimension

    async def ensure(self) -> None:
        """Creates the index when it does not exist; an existing index is left as it is."""
        try:
            await self._redis.ft(self._name).info()
            return
        except ResponseError:
            pass
        fields = [
            TagField("tenant"),
            TagField("document_id"),
            TextField("title", weight=2.0),
            TextField("text"),
            NumericField("chunk"),
            VectorField(
                "embedding",
                "HNSW",
                {"TYPE": "FLOAT32", "DIM": self._dimension, "DISTANCE_METRIC": "COSINE"},
            ),
        ]
        definition = IndexDefinition(prefix=[self._prefix], index_type=IndexType.HASH)
        try:
            await self._redis.ft(self._name).create_index(fields, definition=definition)
        except ResponseError as exc:
            if "already exists" not in str(exc).lower():
                raise

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def replace_document(
        self,
        *,
        tenant: str,
        document_id: str,
        title: str,
        source: str | None,
        chunks: Sequence[Chunk],
        vectors: NDArray[np.float32],
    ) -> WriteResult:
        """Replaces every chunk of a document in one MULTI/EXEC transaction.

        A document whose text hash is already stored is left untouched (`unchanged=True`), so a
        redelivered event does not rewrite or duplicate chunks. Readers never see a mix of old and
        new chunks, and a failure leaves the previous version whole.
        """
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk is required")
        sha = hashlib.sha256("\0".join(c.text for c in chunks).encode()).hexdigest()
        manifest = f"{MANIFEST_PREFIX}{tenant}:{document_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_ATTEMPTS):
                try:
                    await pipe.watch(manifest)
                    old = await pipe.hgetall(manifest)
                    old_sha = _decode(old.get(b"sha"))
                    old_count = int(_decode(old.get(b"chunks")) or 0)
                    if old_sha == sha and old_count == len(chunks):
                        await pipe.unwatch()
                        return WriteResult(chunks=old_count, unchanged=True)
                    pipe.multi()
                    for n in range(len(chunks), old_count):
                        pipe.delete(self._chunk_key(tenant, document_id, n))
                    for chunk, vector in zip(chunks, vectors, strict=True):
                        mapping: dict[FieldT, EncodableT] = {
                            "tenant": tenant,
                            "document_id": document_id,
                            "title": title,
                            "source": source or "",
                            "chunk": chunk.index,
                            "text": chunk.text,
                            "embedding": np.asarray(vector, dtype=np.float32).tobytes(),
                        }
                        pipe.hset(self._chunk_key(tenant, document_id, chunk.index), mapping=mapping)
                    pipe.hset(manifest, mapping={"chunks": len(chunks), "sha": sha, "title": title})
                    await pipe.execute()
                    return WriteResult(chunks=len(chunks), unchanged=False)
                except WatchError:
                    continue
        raise RuntimeError(f"{manifest} kept changing during {_WATCH_ATTEMPTS} write attempts")

    async def delete_document(self, *, tenant: str, document_id: str) -> int:
        """Deletes a document's chunks and manifest; returns how many chunks were removed."""
        manifest = f"{MANIFEST_PREFIX}{tenant}:{document_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_ATTEMPTS):
                try:
                    await pipe.watch(manifest)
                    count = int(_decode(await pipe.hget(manifest, "chunks")) or 0)
                    pipe.multi()
                    for n in range(count):
                        pipe.delete(self._chunk_key(tenant, document_id, n))
                    pipe.delete(manifest)
                    await pipe.execute()
                    return count
                except WatchError:
                    continue
        raise RuntimeError(f"{manifest} kept changing during {_WATCH_ATTEMPTS} delete attempts")

    async def search(self, *, tenant: str, vector: NDArray[np.float32], k: int) -> list[Hit]:
        """K nearest chunks of one tenant by cosine similarity, best first."""
        query = (
            Query(f"(@tenant:{{{_escape_tag(tenant)}}})=>[KNN {int(k)} @embedding $vec AS distance]")
            .sort_by("distance")
            .return_fields("document_id", "title", "source", "chunk", "text", "distance")
            .paging(0, k)
            .dialect(2)
        )
        params: dict[str, str | int | float | bytes] = {"vec": np.asarray(vector, dtype=np.float32).tobytes()}
        result = await self._redis.ft(self._name).search(query, query_params=params)
        hits = []
        for doc in result.docs:
            hits.append(
                Hit(
                    document_id=str(doc.document_id),
                    title=str(doc.title),
                    source=str(doc.source) or None,
                    chunk=int(doc.chunk),
                    text=str(doc.text),
                    score=1.0 - float(doc.distance),
                )
            )
        return hits

    def _chunk_key(self, tenant: str, document_id: str, n: int) -> str:
        return f"{self._prefix}{tenant}:{document_id}:{n}"


def _decode(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value
