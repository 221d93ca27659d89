"""The Redis vector index of document chunks (RediSearch HNSW + full text).

Redis is reached directly here, not through Dapr (Dapr has no vector-search building block), so
this module carries its own connection policy: bounded socket timeouts and a short exponential
back-off retry on connection errors (`redis_client`).

Key formats:
    `{prefix}{tenant}:{document_id}:{n}`  hash, one chunk: tenant, document_id, title, source,
                                          chunk (n), text, embedding (float32 bytes), page and
                                          section (of the document section it was cut from; ""
                                          when none; stored, not indexed), meta_<key> (metadata)
    `{manifest_prefix}{tenant}:{document_id}`  hash, the document manifest: chunks, revision (content
                                          hash of the indexed version), sequence (its version
                                          number), writes (how many times its chunks were written)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import redis.asyncio as aioredis
from numpy.typing import NDArray
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from lore_core.search import (
    ChunkSearch,
    IndexLayout,
    IndexOptions,
    Match,
    SearchRequest,
    Tuning,
    ensure_index,
    indexed_metadata,
)

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
    """A piece of a document; `page` and `section` locate it in its source file (when known)."""

    text: str
    index: int
    page: int | None = None
    section: str | None = None


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
    superseded: bool = False


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the index holds for one document."""

    chunks: int
    revision: str | None
    sequence: int
    writes: int


def _escape_tag(value: str) -> str:
    return "".join("\\" + c if not c.isalnum() else c for c in value)


class VectorIndex:
    """Stores and searches chunk embeddings for many tenants in one RediSearch index.

    Args:
        redis: An asyncio Redis client (see `redis_client`).
        name: The RediSearch index name.
        prefix: The key prefix the index covers.
        dimension: Embedding size (384 for all-MiniLM-L6-v2).
        options: Filterable metadata fields and HNSW parameters (`IndexSettings.index_options`).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        name: str,
        prefix: str,
        dimension: int,
        manifest_prefix: str,
        options: IndexOptions | None = None,
    ) -> None:
        self._redis = redis
        self._name = name
        self._prefix = prefix
        self._dimension = dimension
        self._manifest_prefix = manifest_prefix
        self.layout = IndexLayout.of(name, prefix, dimension, options or IndexOptions())

    @property
    def redis(self) -> aioredis.Redis:
        """The client the index uses (lore-ingest also reads its broker's stream through it)."""
        return self._redis

    async def ensure(self) -> None:
        """Creates the index, or rebuilds it when its schema changed (see `search.ensure_index`)."""
        await ensure_index(self._redis, self.layout)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def manifest(self, *, tenant: str, document_id: str) -> Manifest | None:
        """The manifest of a document, or None when the index holds no version of it (one HGETALL)."""
        raw = await self._redis.hgetall(self._manifest_key(tenant, document_id))
        return _manifest(raw) if raw else None

    async def replace_document(
        self,
        *,
        tenant: str,
        document_id: str,
        title: str,
        source: str | None,
        chunks: Sequence[Chunk],
        vectors: NDArray[np.float32],
        revision: str,
        sequence: int,
        metadata: Mapping[str, str | int | float | bool] | None = None,
    ) -> WriteResult:
        """Replaces every chunk of a document in one MULTI/EXEC transaction.

        The manifest is WATCHed, so the write is a compare-and-set against what was read: a
        version already stored with the same ``revision`` is left untouched (``unchanged``), and a
        version with a higher ``sequence`` is never overwritten by an older one (``superseded``).
        Readers never see a mix of old and new chunks, and a failure leaves the previous version
        whole.
        """
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk is required")
        manifest_key = self._manifest_key(tenant, document_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_WATCH_ATTEMPTS):
                try:
                    await pipe.watch(manifest_key)
                    raw = await pipe.hgetall(manifest_key)
                    old = _manifest(raw) if raw else None
                    if old is not None and old.revision == revision:
                        await pipe.unwatch()
                        return WriteResult(chunks=old.chunks, unchanged=True)
                    if old is not None and old.sequence > sequence:
                        await pipe.unwatch()
                        return WriteResult(chunks=old.chunks, unchanged=False, superseded=True)
                    old_count = old.chunks if old else 0
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
                            # Always written: HSET keeps fields it is not given, and a chunk key is
                            # reused by the next version of the document.
                            "page": chunk.page or "",
                            "section": chunk.section or "",
                        }
                        mapping.update(indexed_metadata(self.layout.metadata, metadata or {}))
                        pipe.hset(self._chunk_key(tenant, document_id, chunk.index), mapping=mapping)
                    pipe.hset(
                        manifest_key,
                        mapping={
                            "chunks": len(chunks),
                            "revision": revision,
                            "sequence": sequence,
                            "title": title,
                        },
                    )
                    pipe.hincrby(manifest_key, "writes", 1)
                    await pipe.execute()
                    return WriteResult(chunks=len(chunks), unchanged=False)
                except WatchError:
                    continue
        raise RuntimeError(f"{manifest_key} kept changing during {_WATCH_ATTEMPTS} write attempts")

    async def delete_document(self, *, tenant: str, document_id: str) -> int:
        """Deletes a document's chunks and manifest; returns how many chunks were removed."""
        manifest = self._manifest_key(tenant, document_id)
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

    async def search(self, request: SearchRequest, tuning: Tuning | None = None) -> list[Match]:
        """One tenant's chunks ranked by the request's mode, best first (see `lore_core.search`)."""
        return await ChunkSearch(self._redis, self.layout, tuning).run(request)

    def _manifest_key(self, tenant: str, document_id: str) -> str:
        return f"{self._manifest_prefix}{tenant}:{document_id}"

    def _chunk_key(self, tenant: str, document_id: str, n: int) -> str:
        return f"{self._prefix}{tenant}:{document_id}:{n}"


def _manifest(raw: Mapping[bytes | str, bytes | str]) -> Manifest:
    return Manifest(
        chunks=int(_decode(raw.get(b"chunks")) or 0),
        revision=_decode(raw.get(b"revision")),
        sequence=int(_decode(raw.get(b"sequence")) or 0),
        writes=int(_decode(raw.get(b"writes")) or 0),
    )


def _decode(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value
