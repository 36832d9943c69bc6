"""Does the CPU training path learn? Tiny model: held-out reward before SFT, after SFT, after GRPO.

Not a test: a measurement. On the sample snapshot (swerl_core.train.sample_snapshot) it builds the
tiny random-init model, scores it on the held-out rows, runs the SFT warm start on oracle answers,
scores again, runs GRPO from the SFT model on the SWE-RL reward, and scores a third time. Each score
is the format rate (share of answers that are well-formed and apply) and the mean reward, for greedy
decoding and for sampling at the GRPO temperature, on the held-out rows and (as an in-distribution
reference) on as many train rows. It prints what happened either way.

    .venv/bin/python benchmarks/learn.py [--sft-epochs 40] [--grpo-steps 16] [--home DIR]

Runs offline (HF_HUB_OFFLINE=1); everything lands under --home (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swerl_core.config import load_settings  # noqa: E402
from swerl_core.prompts import render_prompt  # noqa: E402
from swerl_core.reward import extract_solution, search_replace_reward  # noqa: E402
from swerl_core.search_replace import FormatError, parse_edits  # noqa: E402
from swerl_core.train import TrainRequest, run  # noqa: E402
from swerl_core.train.config import train_config_from_dict  # noqa: E402
from swerl_core.train.sample_snapshot import SAMPLE_SNAPSHOT_ID, write_sample_snapshot  # noqa: E402
from swerl_core.train.snapshot import as_files, load_snapshot  # noqa: E402
from swerl_core.train.tiny_model import init_tiny_model, parameter_count  # noqa: E402


@dataclass(frozen=True)
class Score:
    """Quality of one model on some rows under one decoding."""

    format_rate: float  # tags right and at least one SEARCH/REPLACE block
    apply_rate: float  # the edits also apply to the files (reward > −1)
    mean_reward: float
    answers: int

    def __str__(self) -> str:
        return f"format {self.format_rate:4.0%} applies {self.apply_rate:4.0%} reward {self.mean_reward:+.3f}"


def well_formed(text: str) -> bool:
    """True when ``text`` has the ``<think>``/``<solution>`` layout and at least one edit block."""
    try:
        return bool(parse_edits(extract_solution(text)))
    except FormatError:
        return False


def score(model_dir: Path, rows: list[dict], samples: int, temperature: float, max_new_tokens: int) -> Score:
    """Generate ``samples`` answers per row (greedy when ``samples`` is 0) and score them with the reward."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompts = [render_prompt(tokenizer, r["problem_statement"], as_files(r["code_context"])) for r in rows]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    sampling = (
        {"do_sample": True, "temperature": temperature, "num_return_sequences": samples}
        if samples
        else {"do_sample": False}
    )
    torch.manual_seed(0)
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=max_new_tokens, **sampling)
    texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    per_row = max(samples, 1)
    rewards = [
        search_replace_reward(as_files(row["code_context"]), as_files(row["oracle_new_content"]), text)
        for index, text in enumerate(texts)
        for row in [rows[index // per_row]]
    ]
    n = len(rewards)
    return Score(
        sum(map(well_formed, texts)) / n,
        sum(not r.is_format_error for r in rewards) / n,
        sum(r.reward for r in rewards) / n,
        n,
    )


def recipe(sft_epochs: float, grpo_steps: int) -> dict:
    """The demo-cpu recipe, stretched for a few minutes of learning."""
    data = yaml.safe_load((REPO / "deployments" / "configs" / "demo-cpu.yaml").read_text(encoding="utf-8"))
    data["name"] = "learn"
    data["max_completion_length"] = 192
    data["sft"].update({"epochs": sft_epochs, "learning_rate": 2e-3, "per_device_batch_size": 4, "save_steps": 1000})
    # A 3 M-parameter model sampled at 1.0 almost never writes a whole edit right, and a group whose
    # rollouts all score −1 carries no GRPO signal: sample cooler, and use bigger groups.
    data["grpo"].update(
        {
            "prompts_per_step": 2,
            "num_generations": 8,
            "per_device_batch_size": 16,
            "temperature": 0.7,
            "max_steps": grpo_steps,
            "save_steps": 1000,
            "learning_rate": 5e-5,
            "beta": 0.04,
        }
    )
    return data


def main() -> int:
    """Run the three stages and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="SWERL_HOME for this run (default: temporary)")
    parser.add_argument("--sft-epochs", type=float, default=40.0)
    parser.add_argument("--grpo-steps", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4, help="sampled answers per held-out row")
    args = parser.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="swerl-learn-"))
    settings = load_settings(env={"SWERL_HOME": str(home)})
    model = init_tiny_model(home / "models" / "tiny")
    write_sample_snapshot(home)
    train_rows, heldout_rows = load_snapshot(home / "snapshots", SAMPLE_SNAPSHOT_ID)
    heldout = list(heldout_rows)
    seen = list(train_rows)[: len(heldout)]  # in-distribution reference: rows the model trains on
    cfg = train_config_from_dict(recipe(args.sft_epochs, args.grpo_steps))
    print(f"tiny model: {parameter_count(model) / 1e6:.1f}M parameters; held-out rows: {len(heldout)}; home {home}")

    def measure(label: str, model_dir: Path) -> dict[str, Score]:
        start = time.perf_counter()
        temp, length = cfg.grpo.temperature, cfg.max_completion_length
        scores = {
            "held-out greedy": score(model_dir, heldout, 0, temp, length),
            "held-out sampled": score(model_dir, heldout, args.samples, temp, length),
            "train greedy": score(model_dir, seen, 0, temp, length),
            "train sampled": score(model_dir, seen, args.samples, temp, length),
        }
        print(f"{label} ({time.perf_counter() - start:.0f}s):", flush=True)
        for name, value in scores.items():
            print(f"    {name:<17} {value}", flush=True)
        return scores

    before = measure("before SFT", model)
    sft = run(settings, TrainRequest(cfg, stage="sft"))
    print(f"SFT: {sft.steps} steps in {sft.seconds:.0f}s, final loss {sft.metrics.get('loss', float('nan')):.3f}")
    after_sft = measure("after SFT", sft.model_dir)
    grpo = run(settings, TrainRequest(cfg, stage="grpo", base_model=str(sft.model_dir)))
    print(f"GRPO: {grpo.steps} steps in {grpo.seconds:.0f}s, last train-batch reward {grpo.metrics.get('reward'):+.3f}")
    after_grpo = measure("after GRPO", grpo.model_dir)

    print("\nmean reward            before SFT  after SFT  after GRPO")
    for name in before:
        print(
            f"{name:<22} {before[name].mean_reward:+10.3f} {after_sft[name].mean_reward:+10.3f} "
            f"{after_grpo[name].mean_reward:+11.3f}"
        )
    for name in ("held-out sampled", "train sampled"):
        gain = after_grpo[name].mean_reward - after_sft[name].mean_reward
        verdict = "raised" if gain > 0 else "did not raise"
        print(f"GRPO {verdict} the {name} reward above the SFT level ({gain:+.3f}).")
    print(f"MLflow runs: SFT {sft.mlflow_run_id}, GRPO {grpo.mlflow_run_id} in {settings.tracking_uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
