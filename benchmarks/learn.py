"""Does the loop learn? The tiny model on the learnable world: base → SFT → SFT+GRPO, for several seeds.

Not a test: a measurement. It builds the learnable world (swerl_core.demo.learnable), serves it with the
fake GitHub, ingests and curates it like any world (held-out: merged after the world's cutoff), builds the
tiny model with a tokenizer trained on the world, then for each seed trains SFT and GRPO with the
learnable-cpu recipe and scores base, SFT and SFT+GRPO on the held-out rows (greedy, and sampled as GRPO
samples): format rate, apply rate, mean reward, exact-match rate. It also reports GRPO's train-prompt
reward curve (mean of the first vs the last quarter of its steps) and prints mean ± std over seeds.
With ``--toy`` it runs the wiring check instead: 4 one-line fixes stated in the issue, SFT on each
prompt answered with the real fix and with a decoy (``write_toy_snapshot``), GRPO on the real fixes, and
the same measures on those 4 train prompts (16 samples each).

    .venv/bin/python benchmarks/learn.py [--seeds 0 1 2] [--prs-per-repo 800] [--heldout 48] [--toy]

Runs offline; everything lands under --home (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from swerl_core.config import Settings, load_settings  # noqa: E402
from swerl_core.prompts import render_prompt  # noqa: E402
from swerl_core.reward import extract_solution, search_replace_reward  # noqa: E402
from swerl_core.search_replace import FormatError, parse_edits  # noqa: E402
from swerl_core.snapshots import as_files  # noqa: E402
from swerl_core.train.config import TrainConfig, load_train_config  # noqa: E402
from swerl_core.train.snapshot import load_snapshot  # noqa: E402

RECIPE = REPO / "deployments" / "configs" / "learnable-cpu.yaml"
TOY_RECIPE = REPO / "deployments" / "configs" / "toy-cpu.yaml"


@dataclass(frozen=True)
class Score:
    """Quality of one model on some rows under one decoding."""

    format_rate: float  # tags right and at least one SEARCH/REPLACE block
    apply_rate: float  # the edits also apply to the files (reward > −1)
    mean_reward: float
    exact_rate: float  # the edits reproduce the oracle exactly (reward 1.0)


def well_formed(text: str) -> bool:
    """True when ``text`` has the ``<think>``/``<solution>`` layout and at least one edit block."""
    try:
        return bool(parse_edits(extract_solution(text)))
    except FormatError:
        return False


def score(model_dir: Path, rows: list[dict], samples: int, temperature: float, max_new_tokens: int) -> Score:
    """Generate ``samples`` answers per row (greedy when ``samples`` is 0) and score them with the reward.

    Sampling uses the GRPO settings (temperature, no top-k, top-p 1), so "sampled" means what GRPO sees.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompts = [render_prompt(tokenizer, r["problem_statement"], as_files(r["code_context"])) for r in rows]
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0, "num_return_sequences": samples}
        if samples
        else {"do_sample": False}
    )
    torch.manual_seed(0)
    texts: list[str] = []
    for start in range(0, len(prompts), 16):
        batch = tokenizer(prompts[start : start + 16], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, **sampling)
        texts += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
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
        sum(r.reward == 1.0 for r in rewards) / n,
    )


def ingest_and_curate(settings: Settings, world_root: Path, prs_per_repo: int) -> str:
    """Build the learnable world, serve it, ingest and curate it (no shortcut); returns the snapshot id."""
    from swerl_core.demo.learnable import build_learnable_world, learnable_snapshot

    start = time.perf_counter()
    world = build_learnable_world(world_root, seed=0, prs_per_repo=prs_per_repo)
    built = time.perf_counter() - start
    snapshot_id = learnable_snapshot(settings, world)
    train, heldout = load_snapshot(settings.snapshots_dir, snapshot_id)
    print(
        f"world: {sum(len(r.pulls) for r in world.repos.values())} PRs built in {built:.1f}s, ingested and "
        f"curated by {time.perf_counter() - start:.0f}s: snapshot {snapshot_id} "
        f"({len(list(train))} train, {len(list(heldout))} held-out)",
        flush=True,
    )
    return snapshot_id


def reward_quarters(settings: Settings, run_id: str) -> tuple[float, float]:
    """Mean sampled train reward of the first and of the last quarter of a GRPO run's steps (from MLflow)."""
    from mlflow import MlflowClient

    history = sorted(MlflowClient(settings.tracking_uri).get_metric_history(run_id, "reward"), key=lambda m: m.step)
    values = [m.value for m in history]
    quarter = max(1, len(values) // 4)
    return statistics.fmean(values[:quarter]), statistics.fmean(values[-quarter:])


def run_seed(
    settings: Settings,
    cfg: TrainConfig,
    seed: int,
    heldout: list[dict],
    samples: int,
    base: Path,
    sft_snapshot: str,
) -> dict[str, float]:
    """Train one seed (SFT on ``sft_snapshot``, then GRPO on the recipe's snapshot) from the model in ``base``;
    score every stage."""
    from swerl_core.train import TrainRequest, run

    cfg = replace(cfg, seed=seed)
    metrics: dict[str, float] = {}
    temp, length = cfg.grpo.temperature, cfg.max_completion_length

    def measure(stage: str, model_dir: Path) -> None:
        for decoding, k in (("greedy", 0), ("sampled", samples)):
            result = score(model_dir, heldout, k, temp, length)
            for name, value in vars(result).items():
                metrics[f"{stage} {decoding} {name}"] = value

    measure("base", base)
    sft = run(settings, TrainRequest(replace(cfg, snapshot=sft_snapshot), stage="sft", base_model=str(base)))
    measure("sft", sft.model_dir)
    grpo = run(settings, TrainRequest(cfg, stage="grpo", base_model=str(sft.model_dir)))
    measure("grpo", grpo.model_dir)
    first, last = reward_quarters(settings, grpo.mlflow_run_id or "")
    metrics.update({
        "grpo train reward first quarter": first,
        "grpo train reward last quarter": last,
        "sft seconds": sft.seconds,
        "grpo seconds": grpo.seconds,
    })  # fmt: skip
    print(f"seed {seed}: " + ", ".join(f"{k} {v:+.3f}" for k, v in metrics.items()), flush=True)
    return metrics


def base_model(settings: Settings, seed: int, toy: bool, induction: bool) -> Path:
    """The tiny model a seed starts from: a fresh one per seed, or (``induction``) one warmed-up model for all."""
    from swerl_core.demo.learnable import learnable_base_model, learnable_texts
    from swerl_core.demo.tiny_model import TOY_SPEC, TinyModelSpec, init_tiny_model

    if not induction:
        spec = replace(TOY_SPEC if toy else TinyModelSpec(), seed=seed)
        return init_tiny_model(settings.home / f"models/tiny-{seed}", spec, corpus=learnable_texts())
    warmed = learnable_base_model(settings.home / "models" / "tiny-learnable-induction", print_progress)
    print(f"induction warm-up: {warmed.seconds:.0f} s, copy accuracy {warmed.copy_accuracy}", flush=True)
    return warmed.model_dir


def print_progress(event: object) -> None:
    """Print a library progress event's message."""
    print(getattr(event, "message", event), flush=True)


def summary(per_seed: list[dict[str, float]]) -> None:
    """Print mean ± std over seeds of every metric, stage by stage."""
    print(f"\nover {len(per_seed)} seeds (mean ± std):")
    for key in per_seed[0]:
        values = [m[key] for m in per_seed]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"    {key:<36} {statistics.fmean(values):+.3f} ± {spread:.3f}")


def main() -> int:
    """Build, ingest, curate, train and score; print what happened."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="SWERL_HOME for this run (default: temporary)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--prs-per-repo", type=int, default=800)
    parser.add_argument("--heldout", type=int, default=48, help="held-out rows scored per stage")
    parser.add_argument(
        "--samples", type=int, default=0, help="sampled answers per scored row (default 2; 16 with --toy)"
    )
    parser.add_argument("--sft-steps", type=int, default=None, help="override the recipe's sft.max_steps")
    parser.add_argument("--grpo-steps", type=int, default=None, help="override the recipe's grpo.max_steps")
    parser.add_argument("--toy", action="store_true", help="the wiring check on the toy set instead")
    parser.add_argument(
        "--induction",
        action="store_true",
        help="start every seed from one tiny model given the induction warm-up (cached under --home)",
    )
    args = parser.parse_args()
    if args.toy and args.induction:
        parser.error("--induction warms up the learnable world's model; the toy set trains its own small one")

    home = args.home or Path(tempfile.mkdtemp(prefix="swerl-learn-"))
    settings = load_settings(env={"SWERL_HOME": str(home), "SWERL_REWARD__WORKERS": "1"})
    cfg = load_train_config(TOY_RECIPE if args.toy else RECIPE)
    if args.sft_steps:
        cfg = replace(cfg, sft=replace(cfg.sft, max_steps=args.sft_steps))
    if args.grpo_steps:
        cfg = replace(cfg, grpo=replace(cfg.grpo, max_steps=args.grpo_steps))
    if args.toy:
        from swerl_core.demo.toy import write_toy_snapshot

        toy = write_toy_snapshot(home)
        snapshot_id, sft_snapshot = toy.grpo, toy.sft
    else:
        snapshot_id = sft_snapshot = ingest_and_curate(settings, home / "world", args.prs_per_repo)
    cfg = replace(cfg, snapshot=snapshot_id)
    train_rows, heldout_rows = load_snapshot(settings.snapshots_dir, snapshot_id)
    heldout = list(train_rows if args.toy else heldout_rows)[: args.heldout]
    print(f"home {home}; scoring {len(heldout)} {'train' if args.toy else 'held-out'} rows per stage", flush=True)
    samples = args.samples or (16 if args.toy else 2)
    per_seed = [
        run_seed(
            settings, cfg, seed, heldout, samples, base_model(settings, seed, args.toy, args.induction), sft_snapshot
        )
        for seed in args.seeds
    ]
    summary(per_seed)
    for stage_from, stage_to in (("base", "sft"), ("sft", "grpo")):
        key = "sampled mean_reward"
        gains = [m[f"{stage_to} {key}"] - m[f"{stage_from} {key}"] for m in per_seed]
        mean = statistics.fmean(gains)
        rows = "train-prompt" if args.toy else "held-out"
        per = ", ".join(f"{g:+.3f}" for g in gains)
        print(f"{stage_from} → {stage_to}: {rows} sampled reward gain {mean:+.3f} (per seed: {per})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
