"""Run-to-run variation in the learnable path: what is not the CPU's float arithmetic is removed, and stays removed.

The world, its ingest and curation, and the tiny model's tokenizer must come out byte for byte the same whatever
``PYTHONHASHSEED`` and however many threads Polars and tokenizers use; a training step must come out the same
whatever number of threads torch uses. What remains between two machines is the arithmetic of their vector
instructions (docs/training.md, "What varies between runs").
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


@pytest.mark.slow
def test_a_training_step_does_not_depend_on_the_number_of_torch_threads(tmp_path: Path) -> None:
    """SFT steps of the learnable model's shape under one and under two torch threads give the same weights.

    Measured on these machines: identical to the last bit (the tiny model's matrix products split work by rows,
    never inside a sum). Were a CPU library to split a sum by thread, this would fail and the learnable path would
    pin its thread count.
    """
    script = """
import hashlib, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
config = LlamaConfig(vocab_size=1400, hidden_size=128, intermediate_size=352, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True)
model = LlamaForCausalLM(config)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
generator = torch.Generator().manual_seed(1)
for _ in range(3):
    ids = torch.randint(6, 1400, (8, 200), generator=generator)
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    optimizer.zero_grad()
digest = hashlib.sha256()
for tensor in model.state_dict().values():
    digest.update(tensor.numpy().tobytes())
print(digest.hexdigest())
"""
    digests = []
    for threads in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", script, threads], capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-2000:]
        digests.append(done.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]
