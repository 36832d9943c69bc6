"""Run-to-run variation in the learnable path: what is not the CPU's float arithmetic is removed, and stays removed.

The world, its ingest and curation, and the tiny model's tokenizer must come out byte for byte the same whatever
``PYTHONHASHSEED`` and however many threads Polars and tokenizers use. What remains between two runs is the seed
and the float arithmetic (a CPU's vector instructions, and on some CPU libraries the thread count): the recipe
must be robust to it, and benchmarks/learn.py measures how much it moves (docs/training.md, "What varies").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Builds a small learnable world, serves, ingests and curates it, and builds the tiny model's tokenizer; prints the
# snapshot id, a digest of every snapshot row and a digest of the tokenizer.
_FINGERPRINT = """
import hashlib, json, sys
from pathlib import Path
from swerl_core.config import load_settings
from swerl_core.demo.learnable import build_learnable_world, learnable_snapshot, learnable_texts
from swerl_core.demo.tiny_model import LEARNABLE_SPEC, build_tokenizer
from swerl_core.train.snapshot import load_snapshot

home = Path(sys.argv[1])
world = build_learnable_world(home / "world", prs_per_repo=24, heldout_share=0.25)
settings = load_settings(env={"SWERL_HOME": str(home)})
snapshot_id = learnable_snapshot(settings, world)
rows = [sorted(r.items()) for split in load_snapshot(settings.snapshots_dir, snapshot_id) for r in split]
tokenizer = build_tokenizer(LEARNABLE_SPEC, learnable_texts()).backend_tokenizer.to_str()
print(json.dumps({
    "snapshot": snapshot_id,
    "rows": hashlib.sha256(repr(rows).encode()).hexdigest(),
    "tokenizer": hashlib.sha256(tokenizer.encode()).hexdigest(),
}))
"""


def _fingerprint(home: Path, hash_seed: str, threads: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONHASHSEED": hash_seed,
        "POLARS_MAX_THREADS": threads,
        "RAYON_NUM_THREADS": threads,  # tokenizers' trainer
        "OMP_NUM_THREADS": threads,
    }
    done = subprocess.run(
        [sys.executable, "-c", _FINGERPRINT, str(home)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_world_snapshot_and_tokenizer_do_not_depend_on_hash_seed_or_threads(tmp_path: Path) -> None:
    first = _fingerprint(tmp_path / "a", "1", "1")
    second = _fingerprint(tmp_path / "b", "2", "2")
    assert first == second
