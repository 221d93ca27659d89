"""The evaluation sample (bench/eval/sample) through Lore's own indexing and retrieval code.

Runs the harness as a user would (`python bench/eval/beir_eval.py`, a throwaway Redis) and holds
the figures to floors a little below those measured when the ranking was tuned (README,
"Retrieval quality"). Hybrid must beat each ranker alone: a fusion that loses to one of its inputs
means one side of it is broken.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FLOORS = {"vector": 0.68, "text": 0.70, "hybrid": 0.75}


def test_hybrid_ranks_the_sample_better_than_either_ranker_alone(tmp_path: Path) -> None:
    figures_file = tmp_path / "figures.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/eval/beir_eval.py"),
            str(ROOT / "bench/eval/sample"),
            "--json",
            str(figures_file),
        ],
        check=True,
        timeout=600,
    )
    figures = json.loads(figures_file.read_text())
    ndcg = {mode: figures[mode]["ndcg@10"] for mode in ("vector", "text", "hybrid")}
    print(json.dumps(figures, indent=2))
    assert ndcg["hybrid"] >= ndcg["vector"], ndcg
    assert ndcg["hybrid"] >= ndcg["text"], ndcg
    for mode, floor in FLOORS.items():
        assert ndcg[mode] >= floor, (mode, ndcg)
    assert figures["hybrid"]["recall@10"] >= max(figures["vector"]["recall@10"], figures["text"]["recall@10"])
