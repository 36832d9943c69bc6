"""MLflow tracking of one training run: params, per-step metrics, and the end-of-run artifacts.

Everything goes through an explicit :class:`mlflow.MlflowClient` bound to the tracking URI from swerl's settings,
never through MLflow's global "active run" or environment. Per-step metrics come from the trainer's log records (a
:class:`~transformers.TrainerCallback`), with ``tokens_per_s`` derived here, and reach the progress callback as
numbers (:attr:`~swerl_core.progress.Progress.metrics`); at the end a reward-curve PNG, the recipe and a
sample-completions table are logged. Only the main process logs. This module never decides anything about training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from swerl_core.progress import ProgressReporter
from swerl_core.train.config import dotted
from swerl_core.train.reward_fn import Sample

EXPERIMENT = "swerl-train"
CHECKPOINT_URI_TAG = "swerl.checkpoint_uri"  # the s3:// URI of the run's final/ model on shared storage
# Keys shown on the progress line, when present.
_PROGRESS_KEYS = ("loss", "reward", "format_error_rate", "kl", "tokens_per_s")
# Shares drawn beside the reward: malformed answers, completions cut at max_completion_length (TRL's
# clipped_ratio), and groups whose rollouts all scored the same (zero advantage: no learning signal).
_CURVE_SHARES = (
    ("format_error_rate", "format-error rate"),
    ("completions/clipped_ratio", "truncated share"),
    ("frac_reward_zero_std", "zero-advantage groups"),
)


def flat_params(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested dict as dotted MLflow params (``grpo.beta`` → ``"0.04"``)."""
    return {key: str(value) for key, value in dotted(tree, prefix).items()}


def start_run(
    tracking_uri: str, artifact_root: Path, run_name: str, run_id: str | None, params: Mapping[str, str]
) -> str:
    """Start (or, given ``run_id``, reopen) the MLflow run of a training; logs ``params`` on a new run."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    client = MlflowClient(tracking_uri)
    if run_id is not None:
        client.update_run(run_id, status="RUNNING")
        return run_id
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        # A local store would otherwise put artifacts in ./mlruns under the current directory.
        local = tracking_uri.startswith(("sqlite:", "file:"))
        location = Path(artifact_root).resolve().as_uri() if local else None
        experiment_id = client.create_experiment(EXPERIMENT, artifact_location=location)
    run = client.create_run(experiment_id, run_name=run_name)
    items = [Param(k, v[:6000]) for k, v in sorted(params.items())]
    for start in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=items[start : start + 100])
    return run.info.run_id


def finish_run(
    tracking_uri: str,
    run_id: str,
    history: Sequence[Mapping[str, float]],
    samples: Sequence[Sample],
    recipe: Mapping[str, Any],
    status: str = "FINISHED",
) -> None:
    """Log the reward curve, the recipe and the sample table, then close the run with ``status``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    client.log_dict(run_id, dict(recipe), "config.json")
    figure = reward_curve(history)
    if figure is not None:
        client.log_figure(run_id, figure, "reward_curve.png")
    if samples:
        table = {k: [getattr(s, k) for s in samples] for k in asdict(samples[0])}
        client.log_table(run_id, data=table, artifact_file="samples.json")
    client.set_terminated(run_id, status=status)


def record_checkpoint_uri(tracking_uri: str, run_id: str, uri: str) -> None:
    """Tag the run with where its final model lives on shared storage (:data:`CHECKPOINT_URI_TAG`)."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri).set_tag(run_id, CHECKPOINT_URI_TAG, uri)


def reward_curve(history: Sequence[Mapping[str, float]]) -> Any:
    """A matplotlib figure of mean reward (± std) and the :data:`_CURVE_SHARES` per step; ``None`` without data."""
    points = [h for h in history if "reward" in h and "step" in h]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    steps = [p["step"] for p in points]
    mean = [p["reward"] for p in points]
    std = [p.get("reward_std", 0.0) for p in points]
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    axes.plot(steps, mean, marker="o", label="mean reward")
    axes.fill_between(
        steps,
        [m - s for m, s in zip(mean, std, strict=True)],
        [m + s for m, s in zip(mean, std, strict=True)],
        alpha=0.2,
    )
    for key, label in _CURVE_SHARES:
        if all(key in p for p in points):
            axes.plot(steps, [p[key] for p in points], linestyle="--", label=label)
    axes.set(xlabel="step", ylabel="reward", ylim=(-1.05, 1.05), title="SWE-RL reward per step")
    axes.legend(loc="lower right")
    return figure


class MlflowMetrics(TrainerCallback):
    """Sends each trainer log record to MLflow as step metrics, keeps the history, and reports progress."""

    def __init__(self, tracking_uri: str, run_id: str, say: ProgressReporter | None = None) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.run_id = run_id
        self.say = say or ProgressReporter("train")
        self.history: list[dict[str, float]] = []
        self._last_tokens: float | None = None
        self._last_time = time.perf_counter()

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        """Start the tokens/s clock (from the restored token count when resuming)."""
        self._last_tokens = float(state.num_input_tokens_seen or 0)
        self._last_time = time.perf_counter()

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **_: Any) -> None:
        """Log numeric values of ``logs`` at ``state.global_step`` (main process only)."""
        if not state.is_world_process_zero or not logs:
            return
        from mlflow.entities import Metric

        metrics = {k: float(v) for k, v in logs.items() if _is_number(v)}
        now = time.perf_counter()
        if "num_tokens" in metrics:
            seen = metrics["num_tokens"]
            if self._last_tokens is not None and seen > self._last_tokens:
                metrics["tokens_per_s"] = (seen - self._last_tokens) / max(now - self._last_time, 1e-9)
            self._last_tokens = seen
        self._last_time = now
        step = int(state.global_step)
        stamp = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, stamp, step) for k, v in sorted(metrics.items())])
        self.history.append({"step": float(step), **metrics})
        shown = " ".join(f"{k}={metrics[k]:.4g}" for k in _PROGRESS_KEYS if k in metrics)
        if shown:
            self.say(f"step {step}/{state.max_steps} {shown}", step, int(state.max_steps) or None, metrics)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
