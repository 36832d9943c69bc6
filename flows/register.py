"""The ``register`` flow (one checkpoint through the gate into the registry) and ``evaluate-register``, which a
deployment trigger starts when a run of the ``train`` *deployment* completes: every checkpoint evaluated, the best
registered. ``retrain`` evaluates and registers its own training itself, so each run has one owner (see
docs/stages.md)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.bridge import flow_settings, recipe_config, swerl_logs
from flows.evaluate import evaluate
from swerl_core import registry
from swerl_core.evaluate.selection import best_checkpoint
from swerl_core.registry.gate_report import gate_markdown
from swerl_core.registry.register import Registration, current_user
from swerl_core.runs import finished_run_on


def gate_summary(done: Registration) -> str:
    """The gate decision as markdown: what the candidate was judged against, metric by metric, the verdict and why."""
    verdict = done.verdict
    other = verdict.baseline_metrics
    rows = [
        ("mean reward", verdict.candidate.mean_reward, other.mean_reward if other else verdict.required_reward),
        ("format-error rate", verdict.candidate.format_error_rate, other.format_error_rate if other else None),
    ]
    lines = [
        f"### {done.name} v{done.version}: gate **{verdict.verdict}** against {verdict.against}",
        "",
        f"| metric | candidate v{done.version} | {verdict.against} |",
        "|---|---|---|",
        *(f"| {label} | {mine:.4f} | {'-' if theirs is None else f'{theirs:.4f}'} |" for label, mine, theirs in rows),
        "",
        f"Required mean reward: {verdict.required_reward:.4f}; format-error ceiling: {verdict.format_error_ceiling:g}.",
        "",
        f"Why: {verdict.reason}",
        "",
        f"Aliases now on v{done.version}: {', '.join(done.aliases) or 'none'}. Files: `{done.source}`.",
    ]
    if not done.created:
        lines += ["", "This training run was already registered; nothing new was created."]
    elif verdict.comparison is not None:
        lines += ["", gate_markdown(verdict)]
    return "\n".join(lines)


@flow(name="register", flow_run_name="register {checkpoint}")
def register(checkpoint: str, snapshot_id: str) -> Registration:
    """Gate ``checkpoint`` and register it (a training run once: again returns its version); aliases by policy."""
    with swerl_logs():
        request = registry.RegisterRequest(Path(checkpoint), snapshot_id, who=f"prefect ({current_user()})")
        done = registry.run(flow_settings(), request)
        create_markdown_artifact(gate_summary(done), key="gate-decision", description="Registry gate decision")
        return done


def _upstream_parameters(upstream: str) -> dict:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return dict(client.read_flow_run(UUID(upstream.rsplit(".", 1)[-1])).parameters)


@flow(name="evaluate-register", flow_run_name="evaluate-register after {upstream}")
def evaluate_register(upstream: str) -> Registration:
    """Evaluate every checkpoint of the training that the ``train`` deployment run ``upstream`` finished, then
    register the best."""
    with swerl_logs():
        params = _upstream_parameters(upstream)
        recipe, snapshot_id = recipe_config(params["recipe"]), params["snapshot_id"]
        run = finished_run_on(flow_settings().checkpoints_dir, recipe.name, snapshot_id)
        reports = evaluate(run.name, snapshot_id)
        return register(best_checkpoint(reports).model_ref, snapshot_id)
