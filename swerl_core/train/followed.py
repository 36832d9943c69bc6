"""Training in a process of its own, followed by its launcher: the local launcher, and what every followed
training process prints.

:func:`main` (``python -m swerl_core.train.followed``) is a trainer: it trains one stage in its own process and
prints, besides its log lines, each :class:`~swerl_core.progress.Progress` event as a JSON line after
:data:`PROGRESS_MARK` and the :class:`~.result.TrainResult` as a JSON line after :data:`RESULT_MARK`. The local
launcher's child process and the Kubernetes pods (:mod:`.k8s`) run it; :class:`TrainingOutput` reads those lines
back for either launcher.

:func:`train_followed` is the local launcher (``train.launcher: local``): it writes the caller's effective settings
and recipe into a scratch folder, starts :func:`main` on them, passes the child's log lines to the ``swerl.train``
logger and its progress events to the caller's callback, and returns the child's result. When the child exits
abnormally (killed, out of memory, a crashed node) after saving a complete checkpoint, it is started again with
``--resume`` on the same run name: the run continues from that checkpoint's global step, never from step 0. The
module itself never decides what to train.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from swerl_core.config import as_dict, load_settings
from swerl_core.errors import RunError, StorageError
from swerl_core.interrupts import STOP_SIGNALS, interrupt_exit_code, interrupted_by, interruptible
from swerl_core.progress import Progress, ProgressCallback
from swerl_core.runs import checkpoint_step, last_checkpoint, latest_run, new_run_name, run_prefix
from swerl_core.snapshots import default_snapshot
from swerl_core.train import TrainError, TrainRequest, in_this_process
from swerl_core.train.config import load_train_config, train_config_dict
from swerl_core.train.distributed import echoes_another_rank, launched_rank
from swerl_core.train.result import TrainResult

if TYPE_CHECKING:
    from swerl_core.config import Settings

log = logging.getLogger("swerl.train")

PROGRESS_MARK = "SWERL-PROGRESS "
RESULT_MARK = "SWERL-RESULT "
_INPUT_ERROR = 3  # the child's exit code for a TrainError: the same input would fail again
_TAIL = 20  # lines kept to say why a process failed
STOP_GRACE_S = 60.0  # how long a stopped launcher waits for its trainer to close its MLflow run before killing it
# A trainer that was told to stop: it exits 128 + the signal, or -signal when it was still starting (not yet handling).
_STOP_CODES = {code: s.name for s in (signal.SIGINT, *STOP_SIGNALS) for code in (128 + s, -s)}


class TrainingOutput:
    """Reads the lines of followed training processes: progress events (each step once), the result, the rest.

    Every other line goes to ``on_line`` and the last few are kept (:attr:`tail`) to explain a failure.
    A record that cannot be read is logged and skipped; a result that cannot be read is kept as
    :attr:`bad_result` (the reason), so the launcher can say so.
    """

    def __init__(self, progress: ProgressCallback | None, on_line: Callable[[str], None]) -> None:
        self.progress = progress
        self.on_line = on_line
        self.step = 0
        self.seen: set[str] = set()
        self.result: TrainResult | None = None
        self.bad_result: str | None = None
        self.tail: list[str] = []

    def line(self, text: str) -> None:
        """Handle one line a training process printed."""
        if text.startswith(PROGRESS_MARK):
            self._progress(text[len(PROGRESS_MARK) :])
        elif text.startswith(RESULT_MARK):
            if self.result is None:  # every rank of a multi-node Job may print it
                try:
                    self.result = TrainResult.from_json(text[len(RESULT_MARK) :])
                except ValueError as exc:
                    self.bad_result = str(exc)
        elif text.strip():
            self.on_line(text)
            self.tail = [*self.tail[-(_TAIL - 1) :], text]

    def _progress(self, record: str) -> None:
        try:
            event = Progress.from_json(record)
        except ValueError as exc:
            log.warning("a progress record that cannot be read, ignored (%s): %s", exc, record[:200])
            return
        if event.step:  # every pod of a Job may report the same step: report each step once
            if event.step <= self.step:
                return
            self.step = event.step
        elif event.message in self.seen:
            return
        else:
            self.seen.add(event.message)
        if self.progress is not None:
            self.progress(event)


def train_followed(
    settings: Settings,
    request: TrainRequest,
    progress: ProgressCallback | None = None,
    max_restarts: int = 2,
    python: str = sys.executable,
) -> TrainResult:
    """Run ``request`` in a child process until it finishes, resuming it after abnormal exits; see the module
    docstring.

    Raises :class:`TrainError` when there is no snapshot to train on, when the child fails before any checkpoint
    exists, fails with a :class:`TrainError` of its own (bad input: retrying cannot help), keeps failing after
    ``max_restarts`` resumptions, or was stopped by a signal sent to it alone (not resumed: somebody wanted it
    stopped). SIGTERM or SIGHUP to this process stops the child (its MLflow run KILLED) before
    :class:`~swerl_core.interrupts.Interrupted` propagates.
    """
    started = time.perf_counter()
    cfg = request.recipe
    snapshot_id = request.snapshot_id or cfg.snapshot
    if not snapshot_id:
        raise TrainError(f"no snapshot to train on: none requested and recipe {cfg.name!r} names none")
    if request.run_name is not None:
        run_name = request.run_name
    elif request.resume:
        run_name = latest_run(settings.checkpoints_dir, run_prefix(cfg.name, request.stage, snapshot_id))
    else:
        run_name = new_run_name(cfg.name, request.stage, snapshot_id)
    run_dir = settings.checkpoints_dir / run_name
    # Stopped by SIGTERM/SIGHUP, this process stops its trainer first (_follow): never a trainer left on its own.
    with tempfile.TemporaryDirectory(prefix="swerl-train-") as scratch, interruptible():
        settings_file, recipe_file = Path(scratch) / "settings.yaml", Path(scratch) / "recipe.yaml"
        settings_file.write_text(yaml.safe_dump(as_dict(settings)), encoding="utf-8")
        recipe_file.write_text(yaml.safe_dump(train_config_dict(cfg), sort_keys=False), encoding="utf-8")
        base = [python, "-m", "swerl_core.train.followed", "--settings", str(settings_file)]
        base += ["--recipe", str(recipe_file), "--stage", request.stage, "--snapshot", snapshot_id]
        base += ["--run-name", run_name] + (["--model", request.base_model] if request.base_model else [])
        resume = request.resume
        resumed: list[int] = []
        restarts = 0
        while True:
            checkpoint = last_checkpoint(run_dir) if resume else None
            if checkpoint is not None:
                resumed.append(checkpoint_step(checkpoint) or 0)
            code, output = _follow([*base, "--resume"] if resume else base, progress)
            if code == 0 and output.result is not None:
                return replace(
                    output.result,
                    seconds=time.perf_counter() - started,
                    resumed_from_steps=tuple(resumed),
                    restarts=restarts,
                )
            if code == 0:
                raise TrainError(f"training {run_name} ended without a readable result: {output.bad_result}")
            reason = output.tail[-1] if output.tail else f"exit code {code}"
            if code in _STOP_CODES:  # told to stop (by a person or a scheduler), not crashed: no resume
                raise TrainError(f"training {run_name} was stopped by {_STOP_CODES[code]}; --resume continues it")
            if code == _INPUT_ERROR or last_checkpoint(run_dir) is None or restarts >= max_restarts:
                raise TrainError(f"training {run_name} failed (exit code {code}): {reason}")
            log.warning("training %s exited with code %s; resuming from its last checkpoint", run_name, code)
            restarts += 1
            resume = True


def _follow(cmd: Sequence[str], progress: ProgressCallback | None) -> tuple[int, TrainingOutput]:
    output = TrainingOutput(progress, lambda line: log.info("%s", line))
    # Progress bars redraw one line with carriage returns: in a followed log they are noise, the records say it.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, errors="replace"
    ) as child:
        assert child.stdout is not None
        try:
            for raw in child.stdout:
                output.line(raw.rstrip("\n"))
        except BaseException:  # this process is being stopped (Ctrl-C, SIGTERM, a scheduler): never orphan the child
            _stop_child(child, output)
            raise
        code = child.wait()
    return code, output


def _stop_child(child: subprocess.Popen[str], output: TrainingOutput) -> None:
    """Ask the trainer to stop (it marks its MLflow run KILLED), take what it still says, kill it if it lingers."""
    try:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
        rest, _ = child.communicate(timeout=STOP_GRACE_S)
        for line in (rest or "").splitlines():
            output.line(line)
    except subprocess.TimeoutExpired:
        pass
    finally:  # even when a second signal cuts the wait short
        if child.poll() is None:
            child.kill()
            child.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """The followed trainer: train one stage in this process with the given settings (file, else environment) and
    recipe, printing progress records and the result as JSON lines."""
    from swerl_core.train import run as train

    parser = argparse.ArgumentParser(prog="python -m swerl_core.train.followed")
    # Without a settings file (the Kubernetes training pods) settings come from the environment, as for the CLI.
    parser.add_argument("--settings", type=Path)
    parser.add_argument("--recipe", type=Path, required=True, help="the effective recipe the launcher wrote")
    parser.add_argument("--stage", choices=("sft", "grpo"), required=True)
    parser.add_argument("--snapshot")  # default: the recipe's when curated, else the newest (as `swerl train`)
    parser.add_argument("--run-name", required=True)
    parser.add_argument("--model")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(args.settings, env={}) if args.settings else load_settings()
    settings = in_this_process(settings)
    # The library's log lines go to stdout, which the parent reads and passes on to its own logger.
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
    logging.getLogger("swerl").setLevel(logging.INFO)
    main_process = launched_rank() == 0  # one rank reports progress and the result: the others would repeat it

    def on_progress(event: Progress) -> None:
        if main_process:
            print(PROGRESS_MARK + event.as_json(), flush=True)

    cfg = load_train_config(args.recipe)
    snapshot = args.snapshot or default_snapshot(settings, cfg.snapshot)
    if not snapshot:
        print(f"no snapshot: the recipe names none and none is curated under {settings.snapshots_dir}", flush=True)
        return _INPUT_ERROR
    request = TrainRequest(cfg, args.stage, snapshot, args.resume, args.run_name, args.model)
    try:
        with interruptible():  # the trainer marks its MLflow run KILLED on SIGTERM/SIGHUP too
            result = train(settings, request, on_progress)
    except (TrainError, RunError, StorageError) as exc:
        print(f"{exc}", flush=True)
        return _INPUT_ERROR
    except RuntimeError as exc:
        if echoes_another_rank(exc):
            return 1  # the main rank's own line says why; a second, about a broken connection, would hide it
        raise
    except KeyboardInterrupt as exc:
        print(interrupted_by(exc), flush=True)
        return interrupt_exit_code(exc)
    if main_process:
        print(RESULT_MARK + result.as_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
