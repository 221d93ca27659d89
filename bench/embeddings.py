"""Throughput of Lore's all-MiniLM-L6-v2 embeddings on RAG-sized chunks, and int8 quality.

In one run, on the same synthetic English chunks of about 200 words (close to the 256 word-piece
limit), measures chunks per second of:

- the numpy baseline (``bench/numpy_minilm.py``, Lore's former hand-written forward pass), on a
  subset of the chunks to keep the run short (all chunks have nearly the same length, so chunks
  per second stay comparable);
- onnxruntime on the fp32 ONNX export (``lore_core.embeddings.MiniLMEmbeddings``);
- onnxruntime on an int8 variant made with ``quantize_dynamic`` (MatMul weights, per output
  channel), and its cosine agreement with fp32 over all chunks.

The configurations run interleaved, round by round, so that drifting background load hits all of
them alike. About two minutes on two quiet cores with the defaults.

Usage:
    python bench/embeddings.py [--chunks 2000] [--words 200] [--baseline-chunks 96] [--rounds 4]
                               [--batch-size 32] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from numpy_minilm import NumpyMiniLM
from onnxruntime.quantization import QuantType, quantize_dynamic

from lore_core.embeddings import MODEL_FILE, MiniLMEmbeddings, default_model_dir

INT8_FILE = "model-int8.onnx"
# The quality bar for replacing fp32 with int8 (cosine of each int8 vector with its fp32 vector).
MIN_MEAN_COSINE = 0.99
MIN_COSINE = 0.97

_WORD_TEXT = (
    "the a of and to in is that it for on with as was by be this are from or have an they which one "
    "you were all we when there can been has more if will their time would about into only other some "
    "could these two may then first any like now such over after most where also made many before must "
    "through back years much should well people down just because good each those how too little state "
    "very make world still own see men work long here between both life being under never day same "
    "another know while last might us great old year off come since against go came right used take "
    "three system service request document index vector query cluster sidecar message retrieval model "
    "answer question search storage network latency throughput deployment configuration pipeline "
    "component runtime security policy customer invoice contract release engineer schedule report"
)
WORDS = _WORD_TEXT.split()


def synthetic_chunks(count: int, words_per_chunk: int, seed: int = 7) -> list[str]:
    """Build reproducible pseudo-English chunks.

    Args:
        count: Number of chunks.
        words_per_chunk: Words in each chunk.
        seed: Seed of the random generator.

    Returns:
        The chunks, each made of capitalised sentences of 6 to 18 words.
    """
    rng = random.Random(seed)
    chunks = []
    for _ in range(count):
        words: list[str] = []
        while len(words) < words_per_chunk:
            sentence = rng.choices(WORDS, k=min(rng.randint(6, 18), words_per_chunk - len(words)))
            sentence[0] = sentence[0].capitalize()
            sentence[-1] += "."
            words.extend(sentence)
        chunks.append(" ".join(words))
    return chunks


def int8_model(model_dir: Path) -> str:
    """Quantise the fp32 export to int8 next to it, once.

    Only MatMul weights are quantised, with one scale per output channel: a single scale per
    tensor (``quantize_dynamic``'s default) costs far more accuracy on this model.

    Args:
        model_dir: Folder holding the fp32 ``model.onnx``.

    Returns:
        The file name of the int8 model in ``model_dir``.
    """
    target = model_dir / INT8_FILE
    if not target.is_file() or target.stat().st_mtime < (model_dir / MODEL_FILE).stat().st_mtime:
        partial = model_dir / f".{INT8_FILE}.partial"
        quantize_dynamic(
            model_dir / MODEL_FILE,
            partial,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
        partial.replace(target)
    return INT8_FILE


@dataclass
class Config:
    """One measured implementation and what it embedded."""

    label: str
    embed: Callable[[Sequence[str]], npt.NDArray[np.float32]]
    texts: list[str]
    seconds: float = 0.0
    rates: list[float] = field(default_factory=list)
    parts: list[npt.NDArray[np.float32]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.texts) / self.seconds

    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        return np.concatenate(self.parts)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments; ``None`` reads ``sys.argv``.

    Returns:
        The parsed options.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=2000, help="chunks embedded by onnxruntime")
    parser.add_argument("--words", type=int, default=200, help="words per chunk")
    parser.add_argument("--baseline-chunks", type=int, default=96, help="chunks embedded by numpy")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved measurement rounds")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: cores)")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 variant")
    return parser.parse_args(argv)


def main() -> None:
    """Run the benchmark and print the table."""
    args = parse_args()
    chunks = synthetic_chunks(args.chunks, args.words)
    model_dir = default_model_dir()

    started = time.perf_counter()
    fp32 = MiniLMEmbeddings(model_dir, batch_size=args.batch_size, threads=args.threads)
    fp32_load = time.perf_counter() - started
    started = time.perf_counter()
    baseline = NumpyMiniLM(batch_size=args.batch_size)
    numpy_load = time.perf_counter() - started
    configs = [
        Config("numpy baseline", baseline.embed, chunks[: args.baseline_chunks]),
        Config("onnxruntime fp32", fp32.embed, chunks),
    ]
    if not args.no_int8:
        started = time.perf_counter()
        int8_file = int8_model(model_dir)
        quantize_seconds = time.perf_counter() - started
        int8 = MiniLMEmbeddings(
            model_dir, batch_size=args.batch_size, threads=args.threads, model_file=int8_file
        )
        configs.append(Config("onnxruntime int8", int8.embed, chunks))

    lengths = [len(encoding.ids) for encoding in fp32._tokenizer.encode_batch_fast(chunks)]
    print(
        f"numpy {np.__version__}, onnxruntime {ort.__version__}, {os.cpu_count()} CPUs, "
        f"onnxruntime threads: {args.threads or os.cpu_count()}, batch size {args.batch_size}"
    )
    print(
        f"{len(chunks)} chunks of {args.words} words: {np.mean(lengths):.0f} word pieces on average "
        f"after truncation to {fp32.max_seq_length} (min {min(lengths)}, max {max(lengths)}); "
        f"load: numpy {numpy_load:.2f}s, onnxruntime {fp32_load:.2f}s"
        + ("" if args.no_int8 else f", int8 quantisation {quantize_seconds:.1f}s (cached)")
    )
    for config in configs:  # warm-up: page in the weights, start the thread pools
        config.embed(chunks[:2])

    for round_index in range(args.rounds):
        for config in configs:
            step = -(-len(config.texts) // args.rounds)
            part = config.texts[round_index * step : (round_index + 1) * step]
            if not part:
                continue
            started = time.perf_counter()
            config.parts.append(config.embed(part))
            elapsed = time.perf_counter() - started
            config.seconds += elapsed
            config.rates.append(len(part) / elapsed)

    base = configs[0]
    print()
    row = "{:<18} {:>6} {:>8} {:>9} {:>16} {:>11}"
    print(row.format("implementation", "chunks", "seconds", "chunks/s", "per-round range", "vs numpy"))
    for config in configs:
        spread = f"{min(config.rates):.1f}-{max(config.rates):.1f}"
        ratio = f"{config.rate / base.rate:.2f}x"
        print(
            row.format(
                config.label, len(config.texts), f"{config.seconds:.1f}", f"{config.rate:.1f}", spread, ratio
            )
        )

    reference = configs[1].vectors
    worst = float(np.max(np.abs(reference[: len(base.texts)] - base.vectors)))
    print(f"\nmax |onnxruntime fp32 - numpy| over the numpy chunks: {worst:.2e}")
    if not args.no_int8:
        int8_config = configs[2]
        cosines = np.sum(int8_config.vectors * reference, axis=1)  # rows are unit vectors
        verdict = cosines.mean() >= MIN_MEAN_COSINE and cosines.min() >= MIN_COSINE
        print(
            f"int8 vs fp32 cosine over {len(cosines)} chunks: mean {cosines.mean():.4f}, "
            f"min {cosines.min():.4f}, 1st percentile {np.percentile(cosines, 1):.4f}; "
            f"int8 is {int8_config.rate / configs[1].rate:.2f}x fp32; "
            f"bar (mean >= {MIN_MEAN_COSINE}, min >= {MIN_COSINE}): {'met' if verdict else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
