"""Throughput of the numpy all-MiniLM-L6-v2 embeddings on RAG-sized chunks.

Builds synthetic English chunks of about 200 words (close to the 256 word-piece limit), then
measures chunks per second of ``MiniLMEmbeddings`` at batch sizes 8 and 32 against a naive
baseline that embeds one chunk per forward pass, all in the same run. The baseline runs on a
subset of the chunks to keep the whole script under two minutes on two cores; all chunks have
nearly the same length, so chunks per second stay comparable.

Usage:
    python bench/embeddings.py [--chunks 200] [--words 200] [--baseline-chunks 48] [--rounds 4]
                               [--blas-threads N]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Sequence

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
    parser.add_argument("--chunks", type=int, default=200, help="chunks embedded per batched run")
    parser.add_argument("--words", type=int, default=200, help="words per chunk")
    parser.add_argument("--baseline-chunks", type=int, default=48, help="chunks embedded by the baseline")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved measurement rounds")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="cap BLAS threads (sets OPENBLAS_NUM_THREADS/OMP_NUM_THREADS before numpy loads)",
    )
    return parser.parse_args(argv)


def main() -> None:
    """Run the benchmark and print the table."""
    args = parse_args()
    if args.blas_threads is not None:
        # Must happen before numpy (and its OpenBLAS) is imported.
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(args.blas_threads)

    import numpy as np
    from tokenizers import Tokenizer

    from lore_core.embeddings import MiniLMEmbeddings, default_model_dir

    chunks = synthetic_chunks(args.chunks, args.words)
    baseline_chunks = chunks[: args.baseline_chunks]

    counter = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    counter.no_truncation()
    counter.no_padding()
    token_counts = [len(encoding.ids) for encoding in counter.encode_batch(chunks)]

    started = time.perf_counter()
    models = {batch_size: MiniLMEmbeddings(batch_size=batch_size) for batch_size in (1, 8, 32)}
    load_seconds = (time.perf_counter() - started) / len(models)
    limit = models[1].max_seq_length
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, BLAS threads: {args.blas_threads or 'default'}")
    print(
        f"{len(chunks)} chunks of {args.words} words: {np.mean(token_counts):.0f} word pieces on average "
        f"(min {min(token_counts)}, max {max(token_counts)}), "
        f"{sum(count > limit for count in token_counts)} truncated to {limit}; model load {load_seconds:.2f}s"
    )

    models[8].embed(chunks[:2])  # warm-up: page in the weights, initialise BLAS threads

    # Interleave the configurations round by round so that drifting background load (other jobs
    # on the machine) hits all of them alike; report totals and the spread of per-round rates.
    configs = (
        ("naive baseline", 1, baseline_chunks),
        ("MiniLMEmbeddings", 8, chunks),
        ("MiniLMEmbeddings", 32, chunks),
    )
    seconds = {batch_size: 0.0 for _, batch_size, _ in configs}
    round_rates: dict[int, list[float]] = {batch_size: [] for _, batch_size, _ in configs}
    parts: dict[int, list[np.ndarray]] = {batch_size: [] for _, batch_size, _ in configs}
    for round_index in range(args.rounds):
        for _, batch_size, texts in configs:
            step = -(-len(texts) // args.rounds)
            part = texts[round_index * step : (round_index + 1) * step]
            if not part:
                continue
            started = time.perf_counter()
            parts[batch_size].append(models[batch_size].embed(part))
            elapsed = time.perf_counter() - started
            seconds[batch_size] += elapsed
            round_rates[batch_size].append(len(part) / elapsed)

    baseline_rate = len(baseline_chunks) / seconds[1]
    print()
    row = "{:<16} {:>5} {:>6} {:>8} {:>9} {:>16} {:>11}"
    print(
        row.format(
            "implementation", "batch", "chunks", "seconds", "chunks/s", "per-round range", "vs baseline"
        )
    )
    for label, batch_size, texts in configs:
        rate = len(texts) / seconds[batch_size]
        spread = f"{min(round_rates[batch_size]):.2f}-{max(round_rates[batch_size]):.2f}"
        cells = (f"{seconds[batch_size]:.2f}", f"{rate:.2f}", spread, f"{rate / baseline_rate:.2f}x")
        print(row.format(label, batch_size, len(texts), *cells))
    results = {batch_size: np.concatenate(embedded) for batch_size, embedded in parts.items()}

    # The batched runs must agree with the one-at-a-time baseline.
    worst = max(
        float(np.max(np.abs(results[batch_size][: len(baseline_chunks)] - results[1])))
        for batch_size in (8, 32)
    )
    print(f"\nmax |batched - baseline| over the baseline chunks: {worst:.2e}")


if __name__ == "__main__":
    main()
