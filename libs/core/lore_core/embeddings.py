"""Sentence embeddings behind LangChain's ``Embeddings`` interface, chosen by settings.

Two providers:

- ``local``: all-MiniLM-L6-v2 run offline by onnxruntime (:class:`MiniLMEmbeddings`), from the
  fp32 ONNX export and ``tokenizer.json`` that ``scripts/fetch-model.sh`` (``make model``) puts
  into ``.cache/models/all-minilm-l6-v2``. It reproduces sentence-transformers'
  ``all-MiniLM-L6-v2``: WordPiece tokenisation truncated to ``max_seq_length`` word pieces, the
  BERT encoder, mean pooling over the non-padding tokens and L2 normalisation.
- ``openai``: any server speaking OpenAI's ``POST /v1/embeddings`` (vLLM, llama.cpp,
  text-embeddings-inference, OpenAI itself), through langchain-openai.

Callers should depend on ``langchain_core.embeddings.Embeddings`` and get an instance from
:func:`build_embeddings`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from langchain_core.embeddings import Embeddings
from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr
from tokenizers import Tokenizer

from lore_core.settings import EmbeddingSettings

__all__ = ["MODEL_CACHE_DIR", "MiniLMEmbeddings", "build_embeddings", "default_model_dir"]

F32 = npt.NDArray[np.float32]
"""A float32 numpy array."""

MODEL_CACHE_DIR = Path(".cache") / "models" / "all-minilm-l6-v2"
"""Where ``make model`` puts the model, relative to the repository root."""

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"

# sentence-transformers' all-MiniLM-L6-v2 truncates to 256 word pieces (its
# sentence_bert_config.json); the tokenizer.json shipped with the export says 128.
_DEFAULT_MAX_SEQ_LENGTH = 256
# BERT's learned position embeddings end here.
_MAX_POSITIONS = 512
# Mean pooling divides by max(token count, this), as sentence-transformers does.
_MIN_TOKEN_COUNT = np.float32(1e-9)
# L2 normalisation divides by max(norm, this), as torch.nn.functional.normalize does.
_MIN_NORM = np.float32(1e-12)


def default_model_dir() -> Path:
    """Find the model folder that ``make model`` fills.

    Looks for ``.cache/models/all-minilm-l6-v2`` in the folders above this package (a uv
    workspace installs ``lore_core`` in place, so that is the repository), then above the
    working directory (a packaged install run from a checkout).

    Returns:
        The first such folder that holds ``model.onnx``.

    Raises:
        FileNotFoundError: If there is none; the message says how to get the model.
    """
    candidates = [*Path(__file__).resolve().parents, Path.cwd(), *Path.cwd().parents]
    for base in candidates:
        directory = base / MODEL_CACHE_DIR
        if (directory / MODEL_FILE).is_file():
            return directory
    raise FileNotFoundError(
        f"no {MODEL_CACHE_DIR / MODEL_FILE} above {Path(__file__).parent} or {Path.cwd()}: "
        "run `make model` in the repository, or set EMBEDDING_MODEL_DIR to a folder holding "
        f"{MODEL_FILE} and {TOKENIZER_FILE}"
    )


class MiniLMEmbeddings(Embeddings):
    """Sentence embeddings from all-MiniLM-L6-v2, computed offline with onnxruntime.

    Within one call, texts are sorted by token count and batched so that little compute goes to
    padding; results come back in the input order. onnxruntime allows concurrent ``run`` calls
    on one session and the tokenizer is only read after construction, so one instance can
    serve several threads at once.

    Example:
        >>> model = MiniLMEmbeddings()
        >>> model.embed(["a sentence", "another one"]).shape
        (2, 384)
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        batch_size: int = 32,
        max_seq_length: int = _DEFAULT_MAX_SEQ_LENGTH,
        threads: int | None = None,
        model_file: str = MODEL_FILE,
    ) -> None:
        """Load the tokenizer and create the inference session.

        Args:
            model_dir: Folder holding ``model.onnx`` (an ONNX BERT export with inputs
                ``input_ids`` and ``attention_mask``, optionally ``token_type_ids``, and the token
                states as first output) and ``tokenizer.json``. Defaults to
                :func:`default_model_dir`.
            batch_size: Maximum number of texts per inference run.
            max_seq_length: Word pieces per text, ``[CLS]`` and ``[SEP]`` included; longer texts
                are truncated.
            threads: onnxruntime intra-op threads of one run; ``None`` uses one per CPU core.
            model_file: Name of the ONNX file in ``model_dir`` (e.g. a quantised variant).

        Raises:
            ValueError: If an argument is out of range or the model has unexpected inputs.
            FileNotFoundError: If a model file is missing.
        """
        directory = Path(model_dir) if model_dir is not None else default_model_dir()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 2 <= max_seq_length <= _MAX_POSITIONS:
            raise ValueError(f"max_seq_length must be in [2, {_MAX_POSITIONS}], got {max_seq_length}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        for name in (model_file, TOKENIZER_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} is missing: run `make model`")
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length

        tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        # The exported tokenizer.json truncates to 128 and pads to a fixed 128: replace both, so
        # that batches are padded to their own longest text only.
        tokenizer.enable_truncation(max_length=max_seq_length)
        tokenizer.no_padding()
        self._tokenizer = tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        # One model, run node after node: extra inter-op threads would only compete for cores.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Fuses attention, LayerNorm and GELU subgraphs into single kernels.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: in lore-ingest the model shares two cores
        # with the event loop, the sidecar and Redis, and spinning threads take CPU from them
        # between batches (onnxruntime's session option `session.intra_op.allow_spinning`).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(directory / model_file), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {node.name for node in self._session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= inputs <= {"input_ids", "attention_mask", "token_type_ids"}:
            raise ValueError(f"{directory / model_file}: unexpected model inputs {sorted(inputs)}")
        self._needs_token_types = "token_type_ids" in inputs
        output = self._session.get_outputs()[0]
        self._output_name: str = output.name
        dimension = output.shape[-1]
        if not isinstance(dimension, int):
            # A symbolic width: ask the model once.
            dimension = self._run(np.array([[101, 102]], dtype=np.int64)).shape[-1]
        self._dimension = int(dimension)

    @property
    def dimension(self) -> int:
        """Length of the embedding vectors (384 for all-MiniLM-L6-v2)."""
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        """Word pieces per text, special tokens included, beyond which texts are truncated."""
        return self._max_seq_length

    @property
    def batch_size(self) -> int:
        """Maximum number of texts per inference run."""
        return self._batch_size

    def embed(self, texts: Sequence[str]) -> F32:
        """Embed texts.

        Args:
            texts: The texts; each is truncated to ``max_seq_length`` word pieces.

        Returns:
            A float32 array of shape ``(len(texts), dimension)`` whose rows have unit L2 norm,
            in the order of ``texts``.
        """
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return result
        encodings = self._tokenizer.encode_batch_fast(list(texts))
        lengths = np.array([len(encoding.ids) for encoding in encodings], dtype=np.int64)
        # Longest first: batches hold texts of similar length, and a batch too large for memory
        # fails on the first run rather than after minutes of work.
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), self._batch_size):
            indices = order[start : start + self._batch_size]
            width = int(lengths[indices].max())
            input_ids = np.zeros((len(indices), width), dtype=np.int64)
            for row, index in enumerate(indices):
                ids = encodings[index].ids
                input_ids[row, : len(ids)] = ids
            attention_mask = (np.arange(width)[None, :] < lengths[indices, None]).astype(np.int64)
            result[indices] = _mean_pool_normalised(self._run(input_ids, attention_mask), attention_mask)
        return result

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (LangChain interface).

        Args:
            texts: The documents.

        Returns:
            One unit-norm vector of ``dimension`` floats per document, in input order.
        """
        vectors: list[list[float]] = self.embed(texts).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (LangChain interface).

        Args:
            text: The query.

        Returns:
            A unit-norm vector of ``dimension`` floats.
        """
        vector: list[float] = self.embed([text])[0].tolist()
        return vector

    def _run(
        self, input_ids: npt.NDArray[np.int64], attention_mask: npt.NDArray[np.int64] | None = None
    ) -> F32:
        """Run the encoder on one right-padded batch.

        Args:
            input_ids: Token ids of shape ``(batch, seq)``.
            attention_mask: 1 for real tokens, 0 for padding; all ones when omitted.

        Returns:
            Token states of shape ``(batch, seq, dimension)``.
        """
        if attention_mask is None:
            attention_mask = np.ones_like(input_ids)
        feed: dict[str, npt.NDArray[np.int64]] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self._needs_token_types:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        outputs: list[Any] = self._session.run([self._output_name], feed)
        states: F32 = np.asarray(outputs[0], dtype=np.float32)
        return states


def _mean_pool_normalised(states: F32, attention_mask: npt.NDArray[np.int64]) -> F32:
    """Average the token states of the real tokens, then scale to unit length.

    Args:
        states: Token states of shape ``(batch, seq, dimension)``.
        attention_mask: 1 for real tokens, 0 for padding, shape ``(batch, seq)``.

    Returns:
        Unit-norm sentence embeddings of shape ``(batch, dimension)``.
    """
    mask = attention_mask.astype(np.float32)
    summed = np.matmul(mask[:, None, :], states)[:, 0, :]
    counts = np.maximum(mask.sum(axis=1, keepdims=True), _MIN_TOKEN_COUNT)
    pooled = summed / counts
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), _MIN_NORM)
    embeddings: F32 = (pooled / norms).astype(np.float32, copy=False)
    return embeddings


def build_embeddings(settings: EmbeddingSettings, api_key: str | None = None) -> Embeddings:
    """Create the embedding provider that ``settings.embedding_provider`` names.

    Args:
        settings: The embedding settings of the app.
        api_key: For ``openai``: the key sent as bearer token, normally the secret named
            ``settings.embedding_api_key_secret``; ``None`` for servers that need none. Ignored by
            ``local``.

    Returns:
        A LangChain ``Embeddings`` whose vectors have ``settings.embedding_dimension`` floats.

    Raises:
        ValueError: If ``openai`` lacks ``embedding_base_url``, or the local model's dimension
            differs from ``settings.embedding_dimension`` (the index would reject its vectors).
    """
    if settings.embedding_provider == "local":
        model = MiniLMEmbeddings(
            settings.embedding_model_dir,
            batch_size=settings.embedding_batch_size,
            threads=settings.embedding_threads,
            model_file=settings.embedding_model_file,
        )
        if model.dimension != settings.embedding_dimension:
            raise ValueError(
                f"the local model makes {model.dimension}-d vectors, "
                f"EMBEDDING_DIMENSION is {settings.embedding_dimension}"
            )
        return model
    if not settings.embedding_base_url:
        raise ValueError("EMBEDDING_PROVIDER=openai needs EMBEDDING_BASE_URL (e.g. http://host:8000/v1)")
    return OpenAIEmbeddings(
        model=settings.embedding_model,
        openai_api_base=settings.embedding_base_url,
        # The client refuses to start without a key; keyless servers ignore the header.
        openai_api_key=SecretStr(api_key or "unused"),
        # Without this, the client sends tiktoken ids of OpenAI's vocabulary, which other
        # servers cannot decode: they take raw strings and tokenise themselves.
        check_embedding_ctx_length=False,
        chunk_size=settings.embedding_batch_size,
        # The client otherwise asks for base64, which not every compatible server implements.
        model_kwargs={"encoding_format": "float"},
    )
