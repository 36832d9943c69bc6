"""The two steps of one Kubernetes test-run pod (rendered by :mod:`.cluster`): one candidate patch of one instance.

``python -m swerl_core.execution.pod prepare`` is the pod's init container. It sees ``SWERL_HOME`` read-only and
the Job's runs, and takes its own: the file ``run-<index>.json`` of the runs folder (the Job's ConfigMap, written by
:func:`run_spec`) for its completion index (``JOB_COMPLETION_INDEX``, set by Kubernetes), copied beside the tree.
It builds the tree the tests run in: a checkout of the base commit from the mirror, the candidate applied, the test
machinery undone, the test changes applied (:func:`~.resolution.prepare_candidate`). Where that fails, it writes the
verdict (``did_not_apply``, or ``not_run`` for the machine's failures) beside the tree.

``python -m swerl_core.execution.pod test`` is the pod's container. It sees the scratch folder and the repository's
built environment, never the mirror, the rest of ``SWERL_HOME`` or the other runs. It makes the scratch folder and
the run's file root's alone, runs FAIL_TO_PASS and PASS_TO_PASS as a uid of their own (container isolation:
:func:`~.sandbox.run_sandboxed`) and prints the one verdict line, :data:`VERDICT_MARK` + JSON, that :mod:`.cluster`
reads from the pod's log. The candidate's output never reaches that log: the sandbox captures it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, get_args

from swerl_core.config.execution import ExecutionConfig, RepoEnvironment
from swerl_core.config.loading import build_section
from swerl_core.execution.environments import READY, Environment, environment_folder, test_limits
from swerl_core.execution.errors import ExecutionError, PatchDoesNotApply, first_line
from swerl_core.execution.named_tests import limits_for_tests, run_named_tests
from swerl_core.execution.resolution import (
    NOT_RUN,
    ExecutableInstance,
    Reason,
    instance_tests,
    judge,
    prepare_candidate,
)
from swerl_core.git import GitError, mirror_path

VERDICT_MARK = "swerl-verdict "
VERDICTS = frozenset((*get_args(Reason), NOT_RUN))
VERDICT_FILE = "verdict.json"  # beside the tree, when prepare decided without running
SPEC_FILE = "run.json"  # this pod's run, beside the tree
TREE = "checkout"
_DETAIL_CHARS = 500
_LIMIT_KEYS = ("test_timeout_s", "memory_mb", "output_mb", "disk_mb", "processes")


def run_spec(
    index: int,
    instance: ExecutableInstance,
    patch: str,
    declaration: RepoEnvironment,
    config: ExecutionConfig,
    home: str,
) -> dict[str, Any]:
    """What the pod of completion index ``index`` needs to judge ``patch`` (JSON-ready): the instance, the
    candidate, the repository's test command and environment folder (never its install lines, which may hold an
    index's credentials), the test limits and where ``SWERL_HOME`` is mounted."""
    limits = dict(zip(_LIMIT_KEYS, test_limits(config), strict=True))
    return {"index": index, "instance": asdict(instance), "patch": patch, "environment": _environment_spec(declaration),
            "limits": limits, "home": home}  # fmt: skip


def _environment_spec(declaration: RepoEnvironment) -> dict[str, Any]:
    folder = environment_folder(Path("."), declaration)
    return {"test_command": list(declaration.test_command), "folder": folder.as_posix()}


def spec_file(index: int) -> str:
    """The runs folder's file (a ConfigMap key) of completion index ``index``."""
    return f"run-{index}.json"


def prepare(spec: Mapping[str, Any], work: Path) -> None:
    """The init container's step: the run's file and the tree at ``work/checkout``, or ``work/verdict.json`` saying
    why there is no tree."""
    (work / SPEC_FILE).write_text(json.dumps(spec), encoding="utf-8")
    instance = _instance(spec)
    home = Path(spec["home"])
    if not (home / spec["environment"]["folder"] / READY).is_file():
        _write_verdict(work, NOT_RUN, f"the environment of {instance.repo} is not built under {home}/environments")
        return
    try:
        prepare_candidate(instance, mirror_path(home / "mirrors", instance.repo), str(spec["patch"]), work / TREE)
    except PatchDoesNotApply as exc:
        _write_verdict(work, "did_not_apply", str(exc))
    except (ExecutionError, GitError, OSError, subprocess.SubprocessError) as exc:
        _write_verdict(work, NOT_RUN, f"{type(exc).__name__}: {first_line(exc)}")


def test(work: Path) -> dict[str, Any]:
    """The container's step: the verdict on the candidate of the run ``prepare`` left in ``work`` (``prepare``'s
    own, or the tests' through :func:`~.resolution.judge`), as the record :func:`main` prints."""
    # Root's alone from here: the tests' uid can neither swap the tree for a link nor read the run's file.
    os.chown(work, 0, 0)
    os.chmod(work, 0o755)
    for name in (SPEC_FILE, VERDICT_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.chown(work / name, 0, 0, follow_symlinks=False)
            os.chmod(work / name, 0o600, follow_symlinks=False)
    spec = json.loads((work / SPEC_FILE).read_text(encoding="utf-8"))
    decided = work / VERDICT_FILE
    if decided.is_file():
        recorded = json.loads(decided.read_text(encoding="utf-8"))
        return _verdict(spec, recorded["reason"], recorded["detail"])
    try:
        instance = _instance(spec)
        declared = spec["environment"]
        declaration = RepoEnvironment(repo=instance.repo, test_command=tuple(declared["test_command"]))
        folder = Path(spec["home"]) / declared["folder"]
        recorded = json.loads((folder / READY).read_text(encoding="utf-8"))
        environment = Environment(declaration, folder, Path(recorded["base_prefix"]))
        if not environment.base_prefix.is_dir():
            raise ExecutionError(
                f"this image lacks {environment.base_prefix}, the interpreter {instance.repo}'s environment was made "
                "from (execution.environments.image)"
            )
        config = build_section(ExecutionConfig, spec["limits"], "execution.")
        run = run_named_tests(environment, work / TREE, instance_tests(instance), limits_for_tests(config),
                              isolation="container")  # fmt: skip
        resolution = judge(run)
    except Exception as exc:  # noqa: BLE001 - whatever broke, the pod still says why its run has no verdict
        return _verdict(spec, NOT_RUN, f"{type(exc).__name__}: {first_line(exc)}")
    return _verdict(spec, resolution.reason, resolution.detail)


def read_verdict(line: str) -> dict[str, Any] | None:
    """The record of a pod's verdict line; None for any other line. Raises ``ValueError`` for a marked line that is
    not a verdict record."""
    if not line.startswith(VERDICT_MARK):
        return None
    record = json.loads(line[len(VERDICT_MARK) :])
    if not (
        isinstance(record, dict)
        and type(record.get("index")) is int
        and record["index"] >= 0
        and record.get("reason") in VERDICTS
        and isinstance(record.get("detail"), str)
    ):
        raise ValueError(f"not a verdict record: {line[:120]!r}")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Run one step (``prepare`` or ``test``) of this pod's run."""
    parser = argparse.ArgumentParser(prog="python -m swerl_core.execution.pod", description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("prepare", "test"))
    parser.add_argument("--work", type=Path, required=True, help="the pod's scratch folder (an emptyDir)")
    parser.add_argument("--runs", type=Path, help="prepare: the folder of run-<index>.json files")
    args = parser.parse_args(argv)
    if args.step == "test":
        print(VERDICT_MARK + json.dumps(test(args.work)), flush=True)
        return 0
    index = os.environ.get("JOB_COMPLETION_INDEX", "")
    if not index.isdigit() or args.runs is None:
        print(f"swerl: prepare needs --runs and a JOB_COMPLETION_INDEX, got {index!r}", file=sys.stderr)
        return 2
    prepare(json.loads((args.runs / spec_file(int(index))).read_text(encoding="utf-8")), args.work)
    return 0


def _instance(spec: Mapping[str, Any]) -> ExecutableInstance:
    fields = dict(spec["instance"])
    for key in ("fail_to_pass", "pass_to_pass"):
        fields[key] = tuple(fields[key])
    return ExecutableInstance(**fields)


def _verdict(spec: Mapping[str, Any], reason: str, detail: str) -> dict[str, Any]:
    return {"index": int(spec["index"]), "reason": reason, "detail": detail[:_DETAIL_CHARS]}


def _write_verdict(work: Path, reason: str, detail: str) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / VERDICT_FILE).write_text(json.dumps({"reason": reason, "detail": detail}), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
