"""The loop's learning signal on the toy set: SFT teaches the answer format, and a GRPO update follows the advantages.

The toy set (``write_toy_snapshot``) holds one-line fixes whose issue states the line to replace, so the
right answer is obvious. The recipe is ``deployments/configs/toy-cpu.yaml``: its SFT stops while the
model is right on some rollouts and wrong on others (every GRPO group then has a reward spread to learn
from), and its GRPO learning rate is small enough that an update does not knock the model off the
answers it already gives (see docs/training.md, "the toy set"). Over a whole GRPO run the sampled reward
does not yet rise on this set (measured, docs/training.md), so no test asserts that.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from swerl_core.config import Settings, load_settings
from swerl_core.demo.learnable import learnable_texts
from swerl_core.prompts import render_prompt
from swerl_core.reward import search_replace_reward
from swerl_core.train import TrainRequest, run
from swerl_core.train.config import TrainConfig, load_train_config
from swerl_core.train.sample_snapshot import write_toy_snapshot
from swerl_core.train.snapshot import as_files, load_snapshot
from swerl_core.train.tiny_model import TOY_SPEC, init_tiny_model

REPO = Path(__file__).resolve().parent.parent
TOY_RECIPE = REPO / "deployments" / "configs" / "toy-cpu.yaml"


@dataclass(frozen=True)
class ToyRun:
    """The toy set's SFT stage, done once for the module."""

    settings: Settings
    cfg: TrainConfig
    base: Path
    sft: Path


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> ToyRun:
    """A fresh toy model, the toy snapshot, and the model after the recipe's SFT stage."""
    home = tmp_path_factory.mktemp("toy-home")
    settings = load_settings(env={"SWERL_HOME": str(home), "SWERL_REWARD__WORKERS": "1"})
    base = init_tiny_model(home / "models" / "tiny-toy", TOY_SPEC, corpus=learnable_texts())
    cfg = replace(load_train_config(TOY_RECIPE), snapshot=write_toy_snapshot(home, n_train=4, n_heldout=1))
    sft = run(settings, TrainRequest(cfg, stage="sft", base_model=str(base)))
    return ToyRun(settings, cfg, base, sft.model_dir)


def _format_rate(model_dir: Path, rows: list[dict[str, Any]], samples: int, cfg: TrainConfig) -> float:
    """Share of sampled answers (GRPO's sampling: temperature, no top-k) that keep the answer format."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompts = [render_prompt(tokenizer, r["problem_statement"], as_files(r["code_context"])) for r in rows]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    with torch.inference_mode():
        out = model.generate(
            **batch,
            max_new_tokens=cfg.max_completion_length,
            do_sample=True,
            temperature=cfg.grpo.temperature,
            top_k=0,
            top_p=1.0,
            num_return_sequences=samples,
        )
    texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    results = [
        search_replace_reward(as_files(row["code_context"]), as_files(row["oracle_new_content"]), text)
        for index, text in enumerate(texts)
        for row in [rows[index // samples]]
    ]
    return sum(not r.is_format_error for r in results) / len(results)


@pytest.mark.slow
def test_sft_teaches_the_answer_format(toy: ToyRun) -> None:
    rows = list(load_snapshot(toy.settings.snapshots_dir, toy.cfg.snapshot or "")[0])
    before = _format_rate(toy.base, rows, 2, toy.cfg)
    after = _format_rate(toy.sft, rows, 2, toy.cfg)
    assert before == 0.0  # a random model never writes <think>…</think><solution>…</solution>
    assert after >= 0.5, f"format rate after SFT {after:.2f}"


def _sequence_logps(trainer: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Per-token log-probabilities of a batch's completions as TRL's loss computes them (TRL 1.16 internals)."""
    import torch

    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(  # type: ignore[attr-defined]
            trainer.model,
            ids,
            mask,
            batch["completion_ids"].size(1),  # type: ignore[attr-defined]
        )
    return logps, (logps * batch["completion_mask"]).sum(dim=1)


@pytest.mark.slow
def test_one_grpo_update_follows_the_advantages(toy: ToyRun) -> None:
    """On one generated batch: TRL trains on the log-probabilities the model sampled with, and one update at
    the recipe's learning rate raises positive-advantage answers relative to negative ones."""
    import torch

    from swerl_core.train import stages, trl_args
    from swerl_core.train.examples import grpo_examples
    from swerl_core.train.reward_fn import SweRLReward
    from swerl_core.train.trainer import load_tokenizer

    cfg = replace(toy.cfg, base_model=str(toy.sft))
    tokenizer = load_tokenizer(str(toy.sft), toy.settings.home)
    rows, _ = load_snapshot(toy.settings.snapshots_dir, cfg.snapshot or "")
    dataset = grpo_examples(rows, tokenizer, cfg.max_prompt_length).dataset
    args = trl_args.grpo_args(cfg, toy.settings.home / "one-update")
    trainer = stages.build_grpo_trainer(str(toy.sft), tokenizer, args, dataset, SweRLReward(workers=1), [])
    torch.manual_seed(0)
    group = cfg.grpo.num_generations
    batch = trainer._generate_and_score_completions([dataset[i] for i in range(len(dataset)) for _ in range(group)])
    advantages = batch["advantages"]
    assert (advantages > 0).any() and (advantages < 0).any(), "the SFT checkpoint must give mixed groups"

    trainer.model.eval()
    padded, before = _sequence_logps(trainer, batch)
    for row in range(batch["completion_ids"].size(0)):  # each sequence alone, without the batch's left padding
        n = int(batch["completion_mask"][row].sum())
        if n == 0:
            continue  # a truncated completion, masked out of the loss
        prompt = batch["prompt_ids"][row][batch["prompt_mask"][row].bool()]
        sequence = torch.cat([prompt, batch["completion_ids"][row][:n]])[None]
        with torch.no_grad():
            logits = trainer.model(sequence).logits[0, len(prompt) - 1 : -1] / cfg.grpo.temperature
        alone = torch.log_softmax(logits.float(), dim=-1).gather(-1, sequence[0, len(prompt) :, None])[:, 0]
        assert torch.allclose(padded[row, :n], alone, atol=1e-3)

    trainer.model.train()
    optimizer = torch.optim.Adam(trainer.model.parameters(), lr=cfg.grpo.learning_rate)
    trainer.current_gradient_accumulation_steps = 1
    trainer.compute_loss(trainer.model, batch).backward()
    optimizer.step()
    trainer.model.eval()
    change = _sequence_logps(trainer, batch)[1] - before
    kept = batch["completion_mask"].sum(dim=1) > 0
    raised = change[(advantages > 0) & kept].mean()
    lowered = change[(advantages < 0) & kept].mean()
    assert raised > lowered + 0.5, f"log-likelihood change: positive {raised:.3f}, negative {lowered:.3f}"
