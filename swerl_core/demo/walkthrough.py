"""``swerl demo``: the whole pipeline on the offline sample world, narrated step by step.

1. the SWE-RL prompt and reward on a worked example (an issue, the code around it, the developer's
   fix, and model answers from perfect to malformed), and a GRPO-sized batch scored at once;
2. ingest: the sample world's repositories served by a GitHub-compatible server on 127.0.0.1;
3. curate: a snapshot with a time-based held-out split;
4. train: a tiny model built on the spot, an SFT warm start on oracle answers, then GRPO;
5. evaluate the tiny base model, the SFT checkpoint and the GRPO checkpoint on the held-out PRs (one
   protocol, so the GRPO evaluation's MLflow plot compares the three), register the GRPO checkpoint in
   MLflow and let the gate judge it. A tiny model trained for a minute rarely beats the gate's reward
   floor, so "gate fail" is the expected verdict; the point is to see every stage run and where its output
   lands.

Nothing leaves the machine and nothing is downloaded. Everything lands under ``SWERL_HOME``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from swerl_core.config import Secret, Settings
from swerl_core.progress import Progress, ProgressCallback
from swerl_core.prompts import oracle_answer, repair_prompt
from swerl_core.reward import RewardItem, batch_rewards, search_replace_reward
from swerl_core.search_replace import Edit, derive_edits

ISSUE = """\
slugify() keeps trailing dashes

`slugify("Hello, World!")` returns `"hello-world-"`; I expected `"hello-world"`.
Punctuation at the end of the title should not leave a dash behind."""

BEFORE = '''\
"""Turn titles into URL slugs."""

import re

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    """Lower-case ``title`` and join its words with dashes."""
    return _NON_WORD.sub("-", title.lower()).lstrip("-")
'''

AFTER = BEFORE.replace('.lstrip("-")', '.strip("-")')
PATH = "src/textkit/slug.py"


@dataclass(frozen=True)
class Answer:
    """A labelled model answer of the worked example."""

    label: str
    text: str


def worked_answers() -> list[Answer]:
    """Answers to the worked example, from the developer's own fix to malformed ones."""
    oracle = oracle_answer("The regex leaves a dash at the end; strip both sides.", derive_edits(PATH, BEFORE, AFTER))
    partial = oracle_answer(
        "Remove the trailing dash with rstrip.",
        [
            Edit(
                PATH,
                '    return _NON_WORD.sub("-", title.lower()).lstrip("-")',
                '    return _NON_WORD.sub("-", title.lower()).lstrip("-").rstrip("-")',
            )
        ],
    )
    wrong_file = oracle_answer(
        "Maybe the caller is at fault.",
        [Edit("src/textkit/__init__.py", "", '"""textkit."""\n')],
    )
    no_think = oracle.replace("<think>", "")
    missing = oracle_answer(
        "Edit a line that is not there.", [Edit(PATH, "    return title", "    return title.strip()")]
    )
    return [
        Answer("the developer's fix, as SEARCH/REPLACE", oracle),
        Answer("a different but valid fix", partial),
        Answer("an edit to an unrelated new file", wrong_file),
        Answer("no <think> tag", no_think),
        Answer("SEARCH block not in the file", missing),
    ]


DEMO_TOKEN = "demo-token"  # the local server's own token; never a real GitHub credential
HELDOUT_AFTER = datetime(2026, 3, 1, tzinfo=UTC)
RECIPE = "demo-cpu"  # a shipped recipe (deployments/configs/demo-cpu.yaml), so an installed swerl finds it too


def run_demo(settings: Settings, out: TextIO, recipe: Path | str = RECIPE) -> None:
    """Run every stage on the sample world, printing what each one did and where its output landed."""
    show_reward(settings, out)
    snapshot_id = ingest_and_curate(settings, out)
    checkpoint = train_tiny(settings, snapshot_id, out, recipe)
    register_checkpoint(settings, checkpoint, snapshot_id, out)


def ingest_and_curate(settings: Settings, out: TextIO) -> str:
    """Serve the sample world locally, ingest it into DuckDB and curate a snapshot; returns its id."""
    from swerl_core import curate, ingest
    from swerl_core.curate.funnel import render_funnel
    from swerl_core.demo.github_server import FakeGitHub
    from swerl_core.demo.world import build_world

    world = build_world(settings.home / "demo-world")
    repos = tuple(world.repos)
    with FakeGitHub(world, token=DEMO_TOKEN) as server:
        _heading(out, f"2. Ingest {', '.join(repos)} from a GitHub-compatible server at {server.url}")
        local = replace(
            settings, github=replace(settings.github, api_url=server.url, seconds_between_requests=0, local_clones=True)
        )
        result = ingest.run(local, ingest.IngestRequest(repos=repos, token=Secret(DEMO_TOKEN)))
    for repo in result.repos:
        out.write(f"{repo.repo}: {repo.prs_new} new, {repo.prs_updated} updated, {repo.prs_skipped} skipped\n")
    out.write(f"API requests: {result.api_requests} ({result.api_requests_per_pr:.3f} per PR)\n")

    _heading(out, f"3. Curate a snapshot (held-out: merged after {HELDOUT_AFTER:%Y-%m-%d})")
    snapshot = curate.run(settings, curate.CurateRequest(name="demo", heldout_after=HELDOUT_AFTER))
    out.write(render_funnel(snapshot.funnel) + "\n")
    state = "new" if snapshot.created else "unchanged input, reused"
    out.write(f"snapshot {snapshot.id} ({state}): {snapshot.train_rows} train, {snapshot.heldout_rows} held-out\n")
    out.write(f"DuckDB: {settings.db_path}\nsnapshot files: {snapshot.path}\n")
    return snapshot.id


def train_tiny(settings: Settings, snapshot_id: str, out: TextIO, recipe: Path | str = RECIPE) -> Path:
    """Build the tiny model, warm it up with SFT on oracle answers, then run GRPO; returns the final checkpoint."""
    from swerl_core.demo.tiny_model import init_tiny_model, parameter_count
    from swerl_core.train import TrainRequest, run
    from swerl_core.train.config import load_train_config

    cfg = load_train_config(recipe)
    model_dir = settings.home / cfg.base_model
    if not (model_dir / "config.json").is_file():
        init_tiny_model(model_dir)
    _heading(out, f"4. Train a tiny Llama ({parameter_count(model_dir) / 1e6:.1f} M parameters) on {snapshot_id}")
    lines = _narrated(out)
    sft = run(settings, TrainRequest(cfg, stage="sft", snapshot_id=snapshot_id), lines)
    out.write(f"SFT: {sft.steps} steps in {sft.seconds:.0f} s → {sft.model_dir}\n")
    grpo = run(settings, TrainRequest(cfg, "grpo", snapshot_id, base_model=str(sft.model_dir)), lines)
    reward = grpo.metrics.get("reward")
    out.write(
        f"GRPO: {grpo.steps} steps in {grpo.seconds:.0f} s, last mean reward "
        f"{'n/a' if reward is None else f'{reward:+.3f}'} → {grpo.model_dir}\n"
    )
    return grpo.model_dir


def register_checkpoint(settings: Settings, checkpoint: Path, snapshot_id: str, out: TextIO) -> None:
    """Evaluate ``checkpoint`` on the held-out split, register it and let the gate decide on promotion."""
    from swerl_core import evaluate
    from swerl_core.lineage import ancestor_models
    from swerl_core.registry import RegisterRequest, run
    from swerl_core.registry.register import list_versions

    _heading(out, "5. Evaluate on held-out PRs, register in MLflow, gate against the champion")
    for model, _ in ancestor_models(settings, checkpoint.parent):  # base → SFT, beside GRPO in the plot
        m = evaluate.run(settings, evaluate.EvaluateRequest(str(model), snapshot_id, reuse=True)).metrics
        out.write(f"{model}: held-out mean reward {m.mean_reward:+.3f}, apply rate {m.apply_rate:.2f}\n")
    registration = run(settings, RegisterRequest(checkpoint, snapshot_id, who="swerl demo"))
    verdict = registration.verdict
    out.write(f"{registration.name} v{registration.version}: gate {verdict.verdict} against {verdict.against} — "
              f"{verdict.reason}\n")  # fmt: skip
    for move in registration.moves:
        out.write(f"  {move.alias} → v{move.version}\n")
    for row in list_versions(settings):
        out.write(f"  v{row.version}: aliases {', '.join(row.aliases) or '-'}; gate {row.verdict}\n")
    if not verdict.passed:
        out.write(
            "A failed gate is the expected end of the demo: a tiny model trained for a minute rarely clears the "
            "gate's reward floor. Every stage ran; a real base model and recipe are what make it pass.\n"
        )
    predictions = sorted((settings.home / "evaluations").glob("*/predictions.jsonl"))
    if predictions:
        out.write(f"predictions: {predictions[-1]}\n")
    out.write(f"MLflow: {settings.tracking_uri}  (mlflow ui --backend-store-uri {settings.tracking_uri})\n")


def _narrated(out: TextIO) -> ProgressCallback:
    def write(event: Progress) -> None:
        out.write(event.message + "\n")
        out.flush()

    return write


def _heading(out: TextIO, text: str) -> None:
    out.write(f"\n== {text} ==\n")
    out.flush()


def show_reward(settings: Settings, out: TextIO) -> None:
    """Print the worked example: prompt, answers with their rewards, and a batch timing."""
    context = {PATH: BEFORE}
    oracle = {PATH: AFTER}
    _heading(out, "1. The SWE-RL prompt (user message) of a worked example")
    out.write(repair_prompt(ISSUE, context)[:900] + "\n…\n\n")
    out.write("Rewards of five answers:\n")
    answers = worked_answers()
    for answer in answers:
        result = search_replace_reward(context, oracle, answer.text)
        reason = f"  ({result.error})" if result.error else ""
        out.write(f"{result.reward:+.4f}  {answer.label}{reason}\n")
    items = [RewardItem(context, oracle, output=a.text) for a in answers] * 96
    start = time.perf_counter()
    results = batch_rewards(items, workers=settings.reward.workers)
    elapsed = time.perf_counter() - start
    out.write(
        f"\nScored a batch of {len(results)} rollouts in {elapsed * 1000:.1f} ms: identical answers are scored "
        f"once ({len(answers)} distinct here); mean reward {sum(r.reward for r in results) / len(results):+.4f}\n"
    )
