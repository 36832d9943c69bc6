"""Training in its own process, followed line by line and resumed from its last checkpoint when it dies.

:func:`train_followed` starts ``python -m swerl_core.train.followed`` (this module's :func:`main`) with
the exact settings of the caller, reads its output — step records as JSON lines, everything else
passed on to the ``swerl.train`` logger — and returns the :class:`~.job.FollowedRun` the child reported.
When the child exits abnormally (killed, out of memory, a crashed node) after saving a complete checkpoint, it is
started again with ``resume=True`` on the same run name: the run continues from that checkpoint's
global step, never from step 0. This is the local launcher; :mod:`.launcher` chooses between it and the
Kubernetes one (:mod:`.k8s`), whose pods run this module's :func:`main` too. The module itself never
decides what to train.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from swerl_core.config import Settings, as_dict, load_settings
from swerl_core.errors import RunError, StorageError
from swerl_core.lineage import log_snapshot_input
from swerl_core.progress import Progress
from swerl_core.runs import last_checkpoint
from swerl_core.snapshots import default_snapshot
from swerl_core.train import TrainError
from swerl_core.train.config import load_train_config
from swerl_core.train.job import RESULT_MARK, STEP_MARK, FollowedRun, StepCallback, TrainJob, TrainStep

log = logging.getLogger("swerl.train")

_INPUT_ERROR = 3  # the child's exit code for a TrainError: the same input would fail again
_STEP_LINE = re.compile(r"^step (\d+)/(\d+)\s*(.*)$")


def train_followed(
    settings: Settings,
    job: TrainJob,
    on_step: StepCallback | None = None,
    max_restarts: int = 2,
    python: str = sys.executable,
) -> FollowedRun:
    """Run ``job`` in a child process until it finishes, resuming it after abnormal exits; see the module docstring.

    Raises :class:`TrainError` when the child fails before any checkpoint exists, fails with a
    :class:`TrainError` of its own (bad input: retrying cannot help), or keeps failing after
    ``max_restarts`` resumptions.
    """
    run_dir = settings.checkpoints_dir / job.run_name
    resumed: list[int] = []
    with tempfile.TemporaryDirectory(prefix="swerl-train-") as scratch:
        settings_file = Path(scratch) / "settings.yaml"
        settings_file.write_text(yaml.safe_dump(as_dict(settings)), encoding="utf-8")
        resume = False
        while True:
            code, result, last_lines = _follow(_command(python, settings_file, job, resume), on_step)
            if code == 0 and result is not None:
                return _followed(result, len(resumed), resumed)
            checkpoint = last_checkpoint(run_dir)
            reason = last_lines[-1] if last_lines else f"exit code {code}"
            if code == _INPUT_ERROR or checkpoint is None or len(resumed) >= max_restarts:
                raise TrainError(f"training {job.run_name} failed (exit code {code}): {reason}")
            step = int(checkpoint.name.split("-")[-1])
            log.warning("training %s exited with code %s; resuming from %s", job.run_name, code, checkpoint.name)
            resumed.append(step)
            resume = True


def _command(python: str, settings_file: Path, job: TrainJob, resume: bool) -> list[str]:
    cmd = [python, "-m", "swerl_core.train.followed", "--settings", str(settings_file)]
    cmd += ["--recipe", str(job.recipe), "--stage", job.stage, "--snapshot", job.snapshot_id]
    cmd += ["--run-name", job.run_name]
    if job.base_model:
        cmd += ["--model", job.base_model]
    return [*cmd, "--resume"] if resume else cmd


def _follow(cmd: Sequence[str], on_step: StepCallback | None) -> tuple[int, dict[str, Any] | None, list[str]]:
    result = None
    tail: list[str] = []
    # Progress bars redraw one line with carriage returns: in a followed log they are noise, the step records say it.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, errors="replace"
    ) as child:
        assert child.stdout is not None
        for raw in child.stdout:
            line = raw.rstrip("\n")
            if line.startswith(STEP_MARK):
                record = json.loads(line[len(STEP_MARK) :])
                if on_step is not None:
                    on_step(TrainStep(record["step"], record["total"], record["metrics"]))
            elif line.startswith(RESULT_MARK):
                result = json.loads(line[len(RESULT_MARK) :])
            elif line.strip():
                log.info("%s", line)
                tail = [*tail[-19:], line]
        code = child.wait()
    return code, result, tail


def _followed(result: Mapping[str, Any], restarts: int, resumed: list[int]) -> FollowedRun:
    return FollowedRun(
        run_name=result["run_name"],
        run_dir=Path(result["checkpoint_dir"]),
        model_dir=Path(result["model_dir"]),
        mlflow_run_id=result["mlflow_run_id"],
        snapshot_id=result["snapshot_id"],
        steps=int(result["steps"]),
        metrics=dict(result["metrics"]),
        restarts=restarts,
        resumed_from_steps=tuple(resumed),
        checkpoint_uri=result.get("checkpoint_uri"),
    )


def _step_record(event: Progress) -> str | None:
    """A JSON step record for a trainer step event (``step N/M k=v …``), else ``None``."""
    match = _STEP_LINE.match(event.message.strip())
    if match is None:
        return None
    metrics = {}
    for pair in match[3].split():
        key, _, value = pair.partition("=")
        try:
            metrics[key] = float(value)
        except ValueError:
            continue
    return json.dumps({"step": int(match[1]), "total": int(match[2]) or None, "metrics": metrics})


def main(argv: Sequence[str] | None = None) -> int:
    """The child process: train one stage with the given settings (file, else environment) and print the result
    as JSON."""
    from swerl_core.train import TrainRequest
    from swerl_core.train import run as train

    parser = argparse.ArgumentParser(prog="python -m swerl_core.train.followed")
    # Without a settings file (the Kubernetes training pods) settings come from the environment, as for the CLI.
    parser.add_argument("--settings", type=Path)
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--stage", choices=("sft", "grpo"), required=True)
    parser.add_argument("--snapshot")  # default: the recipe's when curated, else the newest (as `swerl train`)
    parser.add_argument("--run-name", required=True)
    parser.add_argument("--model")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(args.settings, env={}) if args.settings else load_settings()
    # The library's log lines go to stdout, which the parent reads and passes on to its own logger.
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
    logging.getLogger("swerl").setLevel(logging.INFO)

    def on_progress(event: Progress) -> None:
        record = _step_record(event)
        if record is not None:
            print(STEP_MARK + record, flush=True)

    cfg = load_train_config(args.recipe)
    snapshot = args.snapshot or default_snapshot(settings, cfg.snapshot)
    if not snapshot:
        print(f"no snapshot: the recipe names none and none is curated under {settings.snapshots_dir}", flush=True)
        return _INPUT_ERROR
    request = TrainRequest(cfg, args.stage, snapshot, args.resume, args.run_name, args.model)
    try:
        result = train(settings, request, on_progress)
    except (TrainError, RunError, StorageError) as exc:
        print(f"{exc}", flush=True)
        return _INPUT_ERROR
    if result.mlflow_run_id:
        log_snapshot_input(
            settings.tracking_uri, result.mlflow_run_id, settings.snapshots_dir, result.snapshot_id, "train"
        )
    fields = {
        "run_name": result.run_name,
        "checkpoint_dir": str(result.checkpoint_dir),
        "model_dir": str(result.model_dir),
        "mlflow_run_id": result.mlflow_run_id,
        "snapshot_id": result.snapshot_id,
        "steps": result.steps,
        "metrics": dict(result.metrics),
        "checkpoint_uri": result.checkpoint_uri,
    }
    print(RESULT_MARK + json.dumps(fields), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
