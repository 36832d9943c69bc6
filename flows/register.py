"""The ``register`` flow (one checkpoint through the gate into the registry) and ``evaluate-register``, which a
deployment trigger starts when a ``train`` flow run completes: every checkpoint evaluated, the best registered."""

from __future__ import annotations

from uuid import UUID

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.bridge import flow_settings, swerl_logs
from flows.evaluate import evaluate
from swerl_core.registry.checkpoint_sweep import RunRegistration, best_checkpoint, register_run
from swerl_core.registry.register import current_user
from swerl_core.runs import finished_run_on
from swerl_core.train.config import load_train_config

_ROWS = (("mean reward", "eval.mean_reward", "gate.champion_mean_reward"),
         ("format-error rate", "eval.format_error_rate", "gate.champion_format_error_rate"))  # fmt: skip


def gate_summary(done: RunRegistration) -> str:
    """The gate decision as markdown: candidate vs champion metric by metric, the verdict and why."""
    tags = done.tags
    champion = tags.get("gate.champion_version", "none")
    lines = [
        f"### {done.name} v{done.version}: gate **{done.verdict}**",
        "",
        f"| metric | candidate v{done.version} | champion {'v' + champion if champion != 'none' else '(none)'} |",
        "|---|---|---|",
        *(f"| {label} | {tags.get(mine, '-')} | {tags.get(theirs, '-')} |" for label, mine, theirs in _ROWS),
        "",
        f"Required mean reward: {tags.get('gate.required_reward', '-')}; "
        f"format-error ceiling: {tags.get('gate.format_error_ceiling', '-')}.",
        "",
        f"Why: {done.reason}",
        "",
        f"Aliases now on v{done.version}: {', '.join(done.aliases) or 'none'}. Checkpoint `{done.checkpoint}`.",
    ]
    if not done.created:
        lines += ["", "This training run was already registered; nothing new was created."]
    if done.evidence:
        lines += ["", done.evidence]
    return "\n".join(lines)


@flow(name="register", flow_run_name="register {checkpoint}")
def register(checkpoint: str, snapshot_id: str) -> RunRegistration:
    """Gate ``checkpoint`` against the champion and register it (once per training run); aliases by policy."""
    with swerl_logs():
        done = register_run(flow_settings(), checkpoint, snapshot_id, who=f"prefect ({current_user()})")
        create_markdown_artifact(gate_summary(done), key="gate-decision", description="Registry gate decision")
        return done


def _upstream_parameters(upstream: str) -> dict:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return dict(client.read_flow_run(UUID(upstream.rsplit(".", 1)[-1])).parameters)


@flow(name="evaluate-register", flow_run_name="evaluate-register after {upstream}")
def evaluate_register(upstream: str) -> RunRegistration:
    """Evaluate every checkpoint of the training that flow run ``upstream`` finished, then register the best."""
    with swerl_logs():
        params = _upstream_parameters(upstream)
        recipe, snapshot_id = load_train_config(params["recipe"]).name, params["snapshot_id"]
        run = finished_run_on(flow_settings().checkpoints_dir, recipe, snapshot_id)
        scores = evaluate(run.name, snapshot_id)
        return register(str(best_checkpoint(scores).checkpoint), snapshot_id)
