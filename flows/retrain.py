"""The ``retrain`` flow, the pipeline in one page: ingest → curate → (stop when the snapshot is unchanged since
this recipe last trained) → train (SFT warm start, then GRPO) → evaluate every checkpoint → gate → register.

Retrain owns the evaluation and registration of the run it trains: its ``train`` subflow's Completed event carries
no deployment, so the ``evaluate-register`` trigger (which matches runs of the ``train`` deployment) never fires
for it. The recipe file is read once, here, and handed on as the recipe itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, State

from flows.bridge import flow_settings, recipe_name, swerl_logs
from flows.curate import curate
from flows.evaluate import evaluate
from flows.ingest import ingest
from flows.register import register
from flows.train import train
from swerl_core.evaluate.results import EvalReport
from swerl_core.evaluate.selection import best_checkpoint
from swerl_core.registry.register import Registration
from swerl_core.runs import unchanged_since_training
from swerl_core.train.config import load_train_config


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retrain did: the snapshot, the training run it produced (if any), its evaluations and registration."""

    snapshot_id: str
    trained_run: str | None
    evaluations: tuple[EvalReport, ...]
    registration: Registration | None
    message: str


def _run_name() -> str:
    params = flow_run.parameters
    repos = params.get("repos") or flow_settings().ingest.repos
    return f"retrain {recipe_name(params['recipe'])} on {', '.join(repos)}"


@flow(name="retrain", flow_run_name=_run_name)
def retrain(
    recipe: str = "learnable-cpu",
    repos: list[str] | None = None,
    heldout_after: datetime | None = None,
    sft_warm_start: bool = True,
    resume: bool = True,
) -> State:
    """Retrain ``recipe`` on fresh data and register the best checkpoint when it passes the gate; with ``resume``
    (the default) training continues the run a failed retrain left on the same snapshot (see the train flow)."""
    with swerl_logs():
        cfg = load_train_config(recipe)
        ingest(repos)
        snapshot = curate(cfg.name, heldout_after)
        previous = unchanged_since_training(flow_settings().checkpoints_dir, cfg.name, snapshot.id)
        if previous is not None:
            message = f"snapshot {snapshot.id} is unchanged since run {previous.name}: nothing new to train on"
            return _finish(RetrainOutcome(snapshot.id, None, (), None, message))
        trained = train(cfg, snapshot.id, sft_warm_start, resume)
        reports = evaluate(trained.grpo.run_name, snapshot.id)
        best = best_checkpoint(reports)
        done = register(best.model_ref, snapshot.id)
        message = (
            f"{trained.grpo.run_name}: best {Path(best.model_ref).name} (held-out mean reward "
            f"{best.metrics.mean_reward:+.3f}) -> {done.name} v{done.version}, gate {done.verdict.verdict} against "
            f"{done.verdict.against}, aliases {', '.join(done.aliases) or 'none'}"
        )
        return _finish(RetrainOutcome(snapshot.id, trained.grpo.run_name, tuple(reports), done, message), best)


def _finish(outcome: RetrainOutcome, best: EvalReport | None = None) -> State:
    create_markdown_artifact(
        f"### Retrain\n\nSnapshot `{outcome.snapshot_id}`.\n\n{outcome.message}", key="retrain-summary"
    )
    done = outcome.registration
    if done is not None and best is not None:
        row = {"training run": outcome.trained_run, "registered checkpoint": best.model_ref,
               "version": done.version, "gate": done.verdict.verdict, "against": done.verdict.against,
               "aliases": ", ".join(done.aliases) or "none"}  # fmt: skip
        create_table_artifact([row], key="retrain-registration", description="what this retrain registered")
    return Completed(message=outcome.message, data=outcome)
