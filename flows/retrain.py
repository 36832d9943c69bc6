"""The ``retrain`` flow, the pipeline in one page: ingest → curate → (stop when the snapshot is unchanged since
this recipe last trained) → train (SFT warm start, then GRPO) → evaluate every checkpoint → gate → register."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Completed, State

from flows.bridge import flow_settings, swerl_logs
from flows.curate import curate
from flows.evaluate import evaluate
from flows.ingest import ingest
from flows.register import register
from flows.train import train
from swerl_core.evaluate.checkpoint_sweep import RunRegistration, best_checkpoint
from swerl_core.train.config import load_train_config
from swerl_core.train.runs import unchanged_since_training


@dataclass(frozen=True)
class RetrainOutcome:
    """What a retrain did: the snapshot, the training run it produced (if any) and the registration."""

    snapshot_id: str
    trained_run: str | None
    registration: RunRegistration | None
    message: str


def _run_name() -> str:
    params = flow_run.parameters
    repos = params.get("repos") or flow_settings().ingest.repos
    return f"retrain {load_train_config(params['recipe']).name} on {', '.join(repos)}"


@flow(name="retrain", flow_run_name=_run_name)
def retrain(
    recipe: str = "deployments/configs/demo-cpu.yaml",
    repos: list[str] | None = None,
    heldout_after: datetime | None = None,
    sft_warm_start: bool = True,
) -> State:
    """Retrain ``recipe`` on fresh data and register the best checkpoint when it passes the gate."""
    with swerl_logs():
        name = load_train_config(recipe).name
        ingest(repos)
        snapshot = curate(name, heldout_after)
        previous = unchanged_since_training(flow_settings().checkpoints_dir, name, snapshot.id)
        if previous is not None:
            message = f"snapshot {snapshot.id} is unchanged since run {previous.name}: nothing new to train on"
            return Completed(message=message, data=RetrainOutcome(snapshot.id, None, None, message))
        trained = train(recipe, snapshot.id, sft_warm_start)
        scores = evaluate(trained.grpo.run_name, snapshot.id)
        done = register(str(best_checkpoint(scores).checkpoint), snapshot.id)
        message = f"{trained.grpo.run_name}: {done.name} v{done.version}, gate {done.verdict}"
        return Completed(message=message, data=RetrainOutcome(snapshot.id, trained.grpo.run_name, done, message))
