"""Read side of the chunk index: the index schema, safe full-text queries and the retrieval modes.

Three modes rank one tenant's chunks:

- `vector`: KNN on the HNSW embedding field, ordered by cosine similarity.
- `text`: BM25 over the `title` and `text` fields (RediSearch stems English terms of TEXT fields).
- `hybrid`: both lists fused by weighted reciprocal rank fusion (RRF).

Every mode also reports each chunk's cosine similarity to the question (`Match.similarity`), so a
score threshold and MMR diversification mean the same thing whatever ranked the chunks.

**Full-text safety.** redis-server 8.2.3 with RediSearch 2.10.5 segfaults (`QueryNode_AddChildren`)
on a DIALECT 2 union in which two stop words precede a real term, e.g. `(is|an|inverse)`. Two
independent layers keep user text from ever reaching that state:

1. The index is created with `STOPWORDS 0` (`INDEX_STOPWORDS`), so the server has no stop words:
   every query term is a real term and the parser never builds the empty nodes that crash.
2. `query_terms` reduces a question to NFKC-normalised, case-folded runs of letters and digits
   (nothing a query parser treats as syntax), drops RediSearch's default stop words and a few
   question words client-side, de-duplicates and bounds the terms. Even an index created
   elsewhere with default stop words never receives one.

The schema, the vector query and the tag filters are redisvl's (`IndexSchema`, `VectorQuery`,
`Tag`); the text query is built here (`text_clause` says why not with redisvl's `TextQuery`). The
tenant filter is added here, never taken from the caller's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import redis.asyncio as aioredis
from numpy.typing import NDArray
from redis.commands.search.index_definition import IndexDefinition, IndexType
from redis.commands.search.query import Query as RedisQuery
from redis.exceptions import ResponseError
from redisvl.query import VectorQuery
from redisvl.query.filter import FilterExpression, Num, Tag
from redisvl.schema import IndexSchema

from lore_core.contracts import TENANT_PATTERN, Filters, Range

# RediSearch's built-in English stop words: DEFAULT_STOPWORDS in RediSearch src/stopwords.h.
REDISEARCH_STOPWORDS = frozenset(
    [
        "a",
        "is",
        "the",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
# Words of questions that carry no topic; dropping them keeps BM25 from rewarding chunks that
# happen to phrase things as questions.
_QUESTION_WORDS = frozenset(
    [
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "how",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "i",
        "you",
        "your",
        "we",
        "our",
        "me",
        "my",
        "from",
        "about",
    ]
)
QUERY_STOPWORDS = REDISEARCH_STOPWORDS | _QUESTION_WORDS
# Index-level stop words: none (`STOPWORDS 0`), see the module docstring.
INDEX_STOPWORDS: list[str] = []

# Letters and digits of any script; `_` is a word character for `\w`, not a term character here.
_TERM = re.compile(r"[^\W_]+")
MAX_QUERY_TERMS = 32
MAX_TERM_CHARS = 40
_TENANT = re.compile(TENANT_PATTERN)


class Mode(StrEnum):
    VECTOR = "vector"
    TEXT = "text"
    HYBRID = "hybrid"


class Scorer(StrEnum):
    BM25 = "BM25"
    BM25STD = "BM25STD"


def query_terms(text: str) -> list[str]:
    """The terms of a full-text query for ``text``: safe to place in any RediSearch query.

    Each term is a run of letters or digits after NFKC normalisation and case folding (so
    full-width and compatibility forms fold to the same term the index holds). Stop words go,
    duplicates go (first occurrence kept), terms longer than `MAX_TERM_CHARS` go, and at most
    `MAX_QUERY_TERMS` are kept.
    """
    seen: set[str] = set()
    terms: list[str] = []
    for term in _TERM.findall(unicodedata.normalize("NFKC", text).casefold()):
        # Case folding can produce combining marks (e.g. "İ" -> "i̇"); keep letters and digits only.
        term = "".join(c for c in term if c.isalnum())
        if not term or term in QUERY_STOPWORDS or len(term) > MAX_TERM_CHARS or term in seen:
            continue
        seen.add(term)
        terms.append(term)
        if len(terms) == MAX_QUERY_TERMS:
            break
    return terms


# HNSW parameters, measured by bench/query on 100,000 chunks (README "Retrieval quality"): with
# M=16 and EF_CONSTRUCTION=200, EF_RUNTIME=300 is the smallest tried that reaches recall@10 >= 0.98
# against exact search (64: 0.891, 200: 0.974, 300: 0.984, 400: 0.991).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_RUNTIME = 300


class FieldKind(StrEnum):
    TAG = "tag"
    NUMERIC = "numeric"


# The metadata key every document may carry to name its collection; always a filterable tag.
COLLECTION = "collection"
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
# Tag values are whole values: `source` is a URL or path and may hold commas, RediSearch's default
# tag separator, so the tag fields split on the ASCII unit separator instead, which no sane value
# holds (a value that does holds several tags and matches on any of them: never another tenant's).
TAG_SEPARATOR = "\x1f"


@dataclass(frozen=True, slots=True)
class MetadataField:
    """A document metadata key the index can filter on; chunks hold it as the hash field `meta_<name>`.

    Args:
        name: The metadata key (letters, digits, `_`; starts with a letter).
        kind: `tag` (exact values, sets) or `numeric` (ranges; dates as epoch seconds).
    """

    name: str
    kind: FieldKind

    @property
    def attribute(self) -> str:
        return f"meta_{self.name}"


def parse_metadata_fields(spec: str) -> tuple[MetadataField, ...]:
    """`"lang:tag, year:numeric"` -> the declared fields, `collection:tag` always among them.

    Raises:
        ValueError: A malformed pair, an unknown kind, a name declared twice, or `collection`
            declared as anything but a tag.
    """
    fields: dict[str, MetadataField] = {COLLECTION: MetadataField(COLLECTION, FieldKind.TAG)}
    declared: set[str] = set()
    for pair in filter(None, (p.strip() for p in spec.split(","))):
        name, _, kind = (x.strip() for x in pair.partition(":"))
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"{pair!r}: a field name is a letter then letters, digits or _ (max 63)")
        if kind not in {k.value for k in FieldKind}:
            raise ValueError(f"{pair!r}: the kind is `tag` or `numeric`")
        if name in declared:
            raise ValueError(f"{name!r} is declared twice")
        if name == COLLECTION and kind != FieldKind.TAG:
            raise ValueError("`collection` is always a tag")
        declared.add(name)
        fields[name] = MetadataField(name, FieldKind(kind))
    return tuple(fields.values())


def indexed_metadata(
    fields: Sequence[MetadataField], metadata: Mapping[str, str | int | float | bool]
) -> dict[str, str | int | float]:
    """The `meta_<key>` hash fields a chunk stores for a document's metadata.

    Every key is kept (bools as 0/1, other values as text). A declared numeric field takes numbers
    and ISO 8601 dates (stored as epoch seconds, UTC when no zone is given); any other value of a
    numeric field is **left out** of the chunk: RediSearch (2.10) fails to index a whole hash whose
    NUMERIC field does not parse as a number (`hash_indexing_failures` in FT.INFO), so the chunk
    would vanish from every query. Left out, the chunk is found by every query that does not filter
    on that field, and by none that does.
    """
    numeric = {f.name for f in fields if f.kind is FieldKind.NUMERIC}
    stored: dict[str, str | int | float] = {}
    for key, value in metadata.items():
        if key in numeric:
            number = _number(value)
            if number is not None:
                stored[f"meta_{key}"] = number
        else:
            stored[f"meta_{key}"] = int(value) if isinstance(value, bool) else str(value)
    return stored


def _number(value: str | int | float | bool) -> int | float | None:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        number = float(value)
    except ValueError:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return number if math.isfinite(number) else None


class FilterError(ValueError):
    """Filters that do not fit the index schema; `problems` are `(field, problem)` pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {p}" for f, p in problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """What a deployment configures about the index schema (`IndexSettings.index_options`).

    Args:
        metadata: The filterable metadata fields.
        hnsw_m: HNSW graph degree.
        hnsw_ef_construction: HNSW build-time candidate list size.
        hnsw_ef_runtime: HNSW query-time candidate list size.
    """

    metadata: tuple[MetadataField, ...] = (MetadataField(COLLECTION, FieldKind.TAG),)
    hnsw_m: int = HNSW_M
    hnsw_ef_construction: int = HNSW_EF_CONSTRUCTION
    hnsw_ef_runtime: int = HNSW_EF_RUNTIME


@dataclass(frozen=True, slots=True)
class IndexLayout:
    """The chunk index's schema: fields, vector algorithm and text weights.

    Args:
        name: The RediSearch index name.
        prefix: The key prefix of chunk hashes.
        dimension: Embedding size.
        title_weight: Weight of `title` relative to `text` (RediSearch's field WEIGHT).
        hnsw_m: HNSW graph degree.
        hnsw_ef_construction: HNSW build-time candidate list size.
        hnsw_ef_runtime: HNSW query-time candidate list size (default for every query).
        metadata: The filterable metadata fields (`parse_metadata_fields`).
    """

    name: str
    prefix: str
    dimension: int
    title_weight: float = 2.0
    hnsw_m: int = HNSW_M
    hnsw_ef_construction: int = HNSW_EF_CONSTRUCTION
    hnsw_ef_runtime: int = HNSW_EF_RUNTIME
    metadata: tuple[MetadataField, ...] = (MetadataField(COLLECTION, FieldKind.TAG),)

    @classmethod
    def of(cls, name: str, prefix: str, dimension: int, options: IndexOptions) -> IndexLayout:
        return cls(
            name=name,
            prefix=prefix,
            dimension=dimension,
            hnsw_m=options.hnsw_m,
            hnsw_ef_construction=options.hnsw_ef_construction,
            hnsw_ef_runtime=options.hnsw_ef_runtime,
            metadata=options.metadata,
        )

    def filter_expression(self, filters: Filters | None) -> FilterExpression | None:
        """The redisvl expression for ``filters`` (None when they hold no condition).

        Every value goes through redisvl's `Tag` (which escapes each value, `|` included:
        TAG_ESCAPED_CHARS in redisvl/utils/token_escaper.py) or `Num` (which coerces to a builtin
        int or float before formatting: `_coerce_to_number` in redisvl/query/filter.py), so no value
        can add syntax. Conditions are ANDed; the caller ANDs the tenant filter on top.

        Raises:
            FilterError: A metadata field the schema does not declare, or a condition of the wrong
                type for its field (a range or text on a tag field, text on a numeric one).
        """
        if filters is None:
            return None
        parts: list[FilterExpression] = []
        problems: list[tuple[str, str]] = []
        for name, values in (
            ("source", filters.source),
            ("meta_collection", filters.collection),
            ("document_id", filters.document_id),
        ):
            if values:
                parts.append(Tag(name) == list(values))
        declared = {f.name: f for f in self.metadata}
        for key, condition in filters.metadata.items():
            where = f"filters.metadata.{key}"
            spec = declared.get(key)
            if spec is None:
                known = ", ".join(sorted(declared)) or "none"
                problems.append((where, f"not a filterable field (declared: {known})"))
                continue
            try:
                parts.append(_condition(spec, condition))
            except (TypeError, ValueError) as exc:
                problems.append((where, str(exc)))
        if problems:
            raise FilterError(problems)
        if not parts:
            return None
        expression = parts[0]
        for part in parts[1:]:
            expression = expression & part
        return expression

    def schema(self) -> IndexSchema:
        return IndexSchema.from_dict(
            {
                "index": {
                    "name": self.name,
                    "prefix": self.prefix,
                    "storage_type": "hash",
                    "stopwords": INDEX_STOPWORDS,
                },
                "fields": [
                    {"name": "tenant", "type": "tag"},
                    {"name": "document_id", "type": "tag"},
                    {"name": "source", "type": "tag", "attrs": _TAG_ATTRS},
                    *(
                        {"name": f.attribute, "type": f.kind.value}
                        | ({"attrs": _TAG_ATTRS} if f.kind is FieldKind.TAG else {})
                        for f in self.metadata
                    ),
                    {"name": "title", "type": "text", "attrs": {"weight": self.title_weight}},
                    {"name": "text", "type": "text"},
                    {"name": "chunk", "type": "numeric"},
                    {
                        "name": "embedding",
                        "type": "vector",
                        "attrs": {
                            "algorithm": "hnsw",
                            "dims": self.dimension,
                            "distance_metric": "cosine",
                            "datatype": "float32",
                            "m": self.hnsw_m,
                            "ef_construction": self.hnsw_ef_construction,
                            "ef_runtime": self.hnsw_ef_runtime,
                        },
                    },
                ],
            }
        )

    def fingerprint(self) -> str:
        """A hash of everything that FT.CREATE is given; a change means the index must be rebuilt."""
        described = {"schema": self.schema().to_dict(), "stopwords": INDEX_STOPWORDS}
        return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


_TAG_ATTRS = {"separator": TAG_SEPARATOR, "case_sensitive": True}


def _condition(spec: MetadataField, condition: Any) -> FilterExpression:
    """One metadata condition as a redisvl expression (see `IndexLayout.filter_expression`)."""
    values = condition if isinstance(condition, list) else [condition]
    if spec.kind is FieldKind.TAG:
        if isinstance(condition, Range):
            raise ValueError("a range needs a numeric field; this one is a tag")
        # As stored by ingestion: bools as 0/1, everything else as its text.
        return Tag(spec.attribute) == [str(int(v)) if isinstance(v, bool) else str(v) for v in values]
    field_ = Num(spec.attribute)
    if isinstance(condition, Range):
        low = condition.gt if condition.gt is not None else condition.gte
        high = condition.lt if condition.lt is not None else condition.lte
        inclusive = {(True, True): "both", (True, False): "left", (False, True): "right"}.get(
            (condition.gt is None, condition.lt is None), "neither"
        )
        return field_.between(
            -math.inf if low is None else low, math.inf if high is None else high, inclusive=inclusive
        )
    if any(isinstance(v, str) for v in values):
        raise ValueError("this field is numeric: give numbers, booleans or a range {gt, gte, lt, lte}")
    expression: FilterExpression | None = None
    for v in values:
        equal = Num(spec.attribute) == (int(v) if isinstance(v, bool) else v)
        expression = equal if expression is None else expression | equal
    assert expression is not None
    return expression


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One retrieval.

    Args:
        tenant: The tenant whose chunks are searched (the server sets it; never widened).
        question: The question text (used by `text` and `hybrid`).
        vector: The question's embedding (used by every mode for similarity).
        mode: Which ranking to use.
        k: Chunks returned.
        min_score: Drop chunks whose cosine similarity to the question is below this.
        mmr: Diversify the k chunks with maximal marginal relevance.
        mmr_lambda: MMR trade-off: 1 is pure relevance, 0 pure diversity.
        filters: Conditions every chunk must meet (see `IndexLayout.filter_expression`).
    """

    tenant: str
    question: str
    vector: NDArray[np.float32]
    mode: Mode = Mode.HYBRID
    k: int = 4
    min_score: float | None = None
    mmr: bool = False
    mmr_lambda: float = 0.5
    filters: Filters | None = None


@dataclass(frozen=True, slots=True)
class Tuning:
    """Ranking parameters, chosen on the evaluation sample (bench/eval).

    Args:
        scorer: RediSearch text scorer.
        candidates: Chunks each ranker contributes before fusion, MMR and thresholds.
        rrf_k: RRF's rank constant: a chunk at rank r adds weight / (rrf_k + r). Smaller than the
            customary 60 because each ranker's first places carry most of its signal here:
            10 beat 20, 30 and 60 on the sample (bench/eval, README "Retrieval quality").
        vector_weight: RRF weight of the vector ranking.
        text_weight: RRF weight of the text ranking.
        hybrid_policy: How RediSearch runs a filtered KNN: `BATCHES` (walk the HNSW graph, keep
            what passes the tenant filter), `ADHOC_BF` (brute force over the filtered chunks) or
            None (RediSearch chooses per query). BATCHES wins when a tenant holds most of the
            index, ADHOC_BF when it holds little (bench/query measures both).
    """

    scorer: Scorer = Scorer.BM25STD
    candidates: int = 40
    rrf_k: int = 10
    vector_weight: float = 1.0
    text_weight: float = 1.0
    hybrid_policy: Literal["BATCHES", "ADHOC_BF"] | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """A retrieved chunk: `score` is the mode's ranking score, `similarity` the cosine similarity."""

    key: str
    document_id: str
    title: str
    source: str | None
    chunk: int
    text: str
    score: float
    similarity: float
    # None when not fetched: a plain vector query (no MMR) ranks by the distance Redis computes.
    embedding: NDArray[np.float32] | None = field(repr=False, compare=False)
    page: int | None = None
    section: str | None = None


# `page` and `section` are stored on each chunk but not indexed: RETURN reads any hash field.
_RETURN = ["document_id", "title", "source", "chunk", "text", "page", "section"]


def tenant_filter(tenant: str) -> FilterExpression:
    """`@tenant:{...}` for one tenant; refuses a value outside the tenant pattern outright.

    redisvl escapes tag values (TAG_ESCAPED_CHARS in redisvl/utils/token_escaper.py, which includes
    `|` so that a value cannot become a union); the pattern check is a second, stricter fence.
    """
    if not _TENANT.fullmatch(tenant):
        raise ValueError(f"invalid tenant {tenant!r}")
    return Tag("tenant") == tenant


class ChunkSearch:
    """Runs retrievals against the chunk index.

    Args:
        redis: An asyncio Redis client (see `lore_core.index.redis_client`).
        layout: The index layout (name and text weights).
        tuning: Ranking parameters.
    """

    def __init__(self, redis: aioredis.Redis, layout: IndexLayout, tuning: Tuning | None = None) -> None:
        self._redis = redis
        self._layout = layout
        self._tuning = tuning or Tuning()

    async def run(self, request: SearchRequest) -> list[Match]:
        """The request's k chunks, best first (see the module docstring for the modes)."""
        if request.k < 1:
            return []
        scope = self.scope(request.tenant, request.filters)
        query_vector = _unit(request.vector)
        depth = max(self._tuning.candidates, request.k * (3 if request.mmr else 1))
        if request.mode is Mode.VECTOR and not request.mmr:
            # The k nearest are the answer (a `min_score` cut keeps the nearest first, so it needs no
            # deeper list): ask for k, without the vectors. A KNN of 40 with every 1.5 KB vector
            # returned cost RediSearch's brute force and the transfer (README, bench/query).
            ranked = await self.vector(request.tenant, query_vector, request.k, scope=scope, embeddings=False)
        elif request.mode is Mode.VECTOR:
            ranked = await self.vector(request.tenant, query_vector, depth, scope=scope)
        elif request.mode is Mode.TEXT:
            ranked = await self.text(request.tenant, request.question, query_vector, depth, scope=scope)
        else:
            by_vector, by_text = await asyncio.gather(
                self.vector(request.tenant, query_vector, depth, scope=scope),
                self.text(request.tenant, request.question, query_vector, depth, scope=scope),
            )
            ranked = fuse(
                [(by_vector, self._tuning.vector_weight), (by_text, self._tuning.text_weight)],
                rrf_k=self._tuning.rrf_k,
            )
        if request.min_score is not None:
            ranked = [m for m in ranked if m.similarity >= request.min_score]
        if request.mmr:
            return mmr(ranked, query_vector, k=request.k, lambda_=request.mmr_lambda)
        return ranked[: request.k]

    def scope(self, tenant: str, filters: Filters | None) -> FilterExpression:
        """The tenant filter ANDed with the request's filters; the tenant part is built here, always.

        Raises:
            ValueError: A tenant outside the tenant pattern.
            FilterError: Filters that do not fit the index schema.
        """
        scope = tenant_filter(tenant)
        extra = self._layout.filter_expression(filters)
        return scope if extra is None else scope & extra

    async def vector(
        self,
        tenant: str,
        vector: NDArray[np.float32],
        n: int,
        *,
        scope: FilterExpression | None = None,
        embeddings: bool = True,
    ) -> list[Match]:
        """The n nearest chunks of a tenant (within ``scope``, default: the whole tenant); `score`
        is the cosine similarity. Without ``embeddings`` the chunks' vectors are not read back (the
        similarity is then 1 - the cosine distance Redis returns)."""
        policy = self._tuning.hybrid_policy
        # RediSearch refuses EF_RUNTIME with ADHOC_BF ("irrelevant for 'ADHOC_BF' policy").
        ef_runtime = None if policy == "ADHOC_BF" else max(self._layout.hnsw_ef_runtime, n)
        query = VectorQuery(
            vector=np.asarray(vector, dtype=np.float32).tobytes(),
            vector_field_name="embedding",
            filter_expression=scope if scope is not None else tenant_filter(tenant),
            num_results=n,
            dtype="float32",
            ef_runtime=ef_runtime,
            hybrid_policy=policy,
        )
        if embeddings:
            query.return_fields(*_RETURN, "embedding", "vector_distance", skip_decode=["embedding"])
        else:
            query.return_fields(*_RETURN, "vector_distance")
        result = await self._redis.ft(self._layout.name).search(query, query_params=query.params)
        if embeddings:
            return [_match(doc, vector, score=None) for doc in result.docs]
        return [_match_by_distance(doc) for doc in result.docs]

    async def text(
        self,
        tenant: str,
        question: str,
        vector: NDArray[np.float32],
        n: int,
        *,
        scope: FilterExpression | None = None,
    ) -> list[Match]:
        """The n best chunks of a tenant (within ``scope``) by BM25 over title and text; `score` is
        the BM25 score."""
        terms = query_terms(question)
        if not terms:
            return []
        # Terms are plain letters and digits and never stop words (see `query_terms`), so no
        # syntax from the user reaches the query; the tenant filter is built here.
        query = (
            RedisQuery(text_clause(terms, scope if scope is not None else tenant_filter(tenant)))
            .scorer(self._tuning.scorer.value)
            .with_scores()
            .paging(0, n)
            .dialect(2)
        )
        for name in _RETURN:
            query.return_field(name)
        query.return_field("embedding", decode_field=False)
        result = await self._redis.ft(self._layout.name).search(query)
        return [_match(doc, vector, score=float(doc.score)) for doc in result.docs]


def text_clause(terms: Sequence[str], scope: FilterExpression) -> str:
    """`(@title|text:t1 F) | (@title|text:t2 F) | ...`: a union of per-term intersections with F.

    The obvious form, `@title|text:(t1 | t2 ...) F` (also what redisvl's TextQuery builds), is
    wrong on RediSearch 2.10.5: a union nested in an intersection is scored as if only one of its
    terms matched (FT.SEARCH ... EXPLAINSCORE shows the rarest term missing from a document that
    holds it), so BM25 ranks a chunk with the product code no higher than one without it. With
    the filter pushed into each term, the union is at the top and every matching term counts,
    as in the unfiltered query. `@title|text` scores both fields in one BM25 pass with the
    schema's WEIGHT on `title`. ``terms`` must come from `query_terms`.
    """
    return " | ".join(f"(@title|text:{term} {scope})" for term in terms)


def _unit(vector: NDArray[np.float32]) -> NDArray[np.float32]:
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _match(doc: Any, query_vector: NDArray[np.float32], *, score: float | None) -> Match:
    raw = doc.embedding
    embedding = _unit(np.frombuffer(raw if isinstance(raw, bytes) else raw.encode("latin-1"), np.float32))
    similarity = float(np.dot(embedding, query_vector))
    return Match(
        key=str(doc.id),
        document_id=str(doc.document_id),
        title=str(doc.title),
        source=str(doc.source) or None,
        chunk=int(doc.chunk),
        text=str(doc.text),
        score=similarity if score is None else score,
        similarity=similarity,
        embedding=embedding,
        page=int(page) if (page := getattr(doc, "page", "")) else None,
        section=str(getattr(doc, "section", "")) or None,
    )


def _match_by_distance(doc: Any) -> Match:
    # redisvl names the KNN score `vector_distance`; for a COSINE field it is 1 - cosine similarity.
    similarity = 1.0 - float(doc.vector_distance)
    return Match(
        key=str(doc.id),
        document_id=str(doc.document_id),
        title=str(doc.title),
        source=str(doc.source) or None,
        chunk=int(doc.chunk),
        text=str(doc.text),
        score=similarity,
        similarity=similarity,
        embedding=None,
        page=int(page) if (page := getattr(doc, "page", "")) else None,
        section=str(getattr(doc, "section", "")) or None,
    )


def fuse(rankings: Sequence[tuple[Sequence[Match], float]], *, rrf_k: int) -> list[Match]:
    """Weighted reciprocal rank fusion: score(c) = sum of weight / (rrf_k + rank) over the rankings.

    Ties keep the order of first appearance (the first ranking's order first).
    """
    scores: dict[str, float] = {}
    first: dict[str, Match] = {}
    for ranking, weight in rankings:
        for rank, match in enumerate(ranking, start=1):
            scores[match.key] = scores.get(match.key, 0.0) + weight / (rrf_k + rank)
            first.setdefault(match.key, match)
    order = sorted(first, key=lambda key: -scores[key])
    return [_rescored(first[key], scores[key]) for key in order]


def _rescored(match: Match, score: float) -> Match:
    return Match(
        key=match.key,
        document_id=match.document_id,
        title=match.title,
        source=match.source,
        chunk=match.chunk,
        text=match.text,
        score=score,
        similarity=match.similarity,
        embedding=match.embedding,
        page=match.page,
        section=match.section,
    )


def mmr(
    candidates: Sequence[Match], query_vector: NDArray[np.float32], *, k: int, lambda_: float
) -> list[Match]:
    """Maximal marginal relevance: greedily picks the chunk that is most similar to the question
    and least similar to the chunks already picked (`lambda_` weighs the two)."""
    if not candidates:
        return []
    vectors = np.stack([m.embedding for m in candidates if m.embedding is not None])
    if len(vectors) != len(candidates):
        raise ValueError("MMR needs the candidates' embeddings (search with embeddings=True)")
    relevance = vectors @ _unit(query_vector)
    chosen: list[int] = []
    redundancy = np.full(len(candidates), -np.inf, dtype=np.float32)
    remaining = set(range(len(candidates)))
    while remaining and len(chosen) < k:
        best = max(
            remaining,
            key=lambda i: lambda_ * relevance[i] - (1 - lambda_) * (redundancy[i] if chosen else 0.0),
        )
        chosen.append(best)
        remaining.discard(best)
        redundancy = np.maximum(redundancy, vectors @ vectors[best])
    return [candidates[i] for i in chosen]


def schema_key(index_name: str) -> str:
    """Key of the string holding the fingerprint of the schema an index was created with."""
    return f"lore:index-schema:{index_name}"


async def ensure_index(redis: aioredis.Redis, layout: IndexLayout) -> bool:
    """Creates the index, or rebuilds it when it was created with another schema.

    A rebuild drops only the index definition (`FT.DROPINDEX` without `DD`): the chunk hashes stay
    and RediSearch indexes them again in the background, so queries may miss chunks until that
    scan ends. An index without a fingerprint (made by an older Lore) counts as another schema.
    Concurrent callers are safe: a lost race ends in "already exists" or "unknown index".

    Returns:
        True when the index was created or rebuilt.
    """
    wanted = layout.fingerprint()
    search = redis.ft(layout.name)
    try:
        await search.info()
        exists = True
    except ResponseError:
        exists = False
    if exists:
        if await redis.get(schema_key(layout.name)) == wanted.encode():
            return False
        with contextlib.suppress(ResponseError):
            await search.dropindex(delete_documents=False)
    schema = layout.schema()
    definition = IndexDefinition(prefix=[layout.prefix], index_type=IndexType.HASH)
    try:
        await search.create_index(schema.redis_fields, definition=definition, stopwords=INDEX_STOPWORDS)
    except ResponseError as exc:
        if "already exists" not in str(exc).lower():
            raise
    await redis.set(schema_key(layout.name), wanted)
    return True
