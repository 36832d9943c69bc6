"""The toy wiring check's snapshots: one-line fixes whose issue states the exact line to replace.

Built from the learnable world's fix generator (:func:`~.learnable.bug_fixes`, with ``explicit`` issues)
and written in curate's row format (:mod:`.sample_snapshot`); the toy-cpu recipe trains on them
(``deployments/configs/toy-cpu.yaml``). Like every fixture here, this writes only
``$SWERL_HOME/snapshots/<id>/`` and reads nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.demo.learnable import bug_fixes, decoy_fix
from swerl_core.demo.sample_snapshot import START, bugfix_rows, write_snapshot_rows
from swerl_core.prompts import render_prompt
from swerl_core.reward import RewardResult, search_replace_reward
from swerl_core.snapshots import as_files


@dataclass(frozen=True)
class ToySnapshots:
    """The toy set's two snapshot ids: GRPO's (the real fixes) and SFT's (each prompt with two answers)."""

    grpo: str
    sft: str


def write_toy_snapshot(home: Path, n_train: int = 4, n_heldout: int = 1, seed: int = 0) -> ToySnapshots:
    """The toy wiring check's snapshots: one-line fixes whose issue states the exact line to replace.

    ``grpo`` holds the real fixes. ``sft`` holds each train prompt twice: once answered with the real fix
    (reward 1.0) and once with a well-formed decoy that edits another line and leaves the bug
    (:func:`~.learnable.decoy_fix`, reward 0.4-0.6). SFT on ``sft`` teaches the format and
    leaves the model choosing between the two answers about half and half; GRPO on ``grpo`` must then move
    that choice to the real fix, so the sampled reward rises. If it does not, the reward, advantage,
    masking or data plumbing is wrong.
    """
    fixes = bug_fixes(n_train + n_heldout, seed=seed, package="toy", explicit=True)
    rows = bugfix_rows(fixes, "learn/toy", START)
    train, heldout = rows[:n_train], rows[n_train:]
    decoys = bugfix_rows([decoy_fix(fix) for fix in fixes[:n_train]], "learn/toy", START)
    for real, decoy in zip(train, decoys, strict=True):
        decoy["instance_id"] = f"{real['instance_id']}-decoy"
    snapshots = ToySnapshots(grpo=f"toy-{n_train}-{seed}", sft=f"toy-decoy-{n_train}-{seed}")
    write_snapshot_rows(Path(home), snapshots.grpo, train, heldout, "learn/toy")
    write_snapshot_rows(Path(home), snapshots.sft, train + decoys, heldout, "learn/toy")
    return snapshots


def sampled_rewards(
    model_dir: Path, rows: Sequence[Mapping[str, Any]], samples: int, temperature: float, max_new_tokens: int
) -> list[RewardResult]:
    """The rewards of ``samples`` answers per row, sampled as GRPO samples (``temperature``, no top-k, seed 0)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if samples < 1 or not rows:
        raise ValueError(f"nothing to sample: {len(rows)} rows, {samples} samples per row")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"  # the answers are read after the prompt, so the prompts end together
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompts = [render_prompt(tokenizer, r["problem_statement"], as_files(r["code_context"])) for r in rows]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    with torch.inference_mode():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            num_return_sequences=samples,
        )
    texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    return [
        search_replace_reward(as_files(row["code_context"]), as_files(row["oracle_new_content"]), text)
        for index, text in enumerate(texts)
        for row in [rows[index // samples]]
    ]


def format_rate(results: Sequence[RewardResult]) -> float:
    """The share of answers in the SWE-RL format (``results`` must not be empty)."""
    if not results:
        raise ValueError("no answers to rate")
    return sum(not r.is_format_error for r in results) / len(results)


def exact_rate(results: Sequence[RewardResult]) -> float:
    """The share of answers that are the exact fix (reward 1.0; ``results`` must not be empty)."""
    if not results:
        raise ValueError("no answers to rate")
    return sum(r.reward == 1.0 for r in results) / len(results)
