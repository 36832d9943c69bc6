"""A training stage as a Kubernetes Job: render it from the recipe, apply it, follow it, read its result back.

The pods run ``swerl_core.train.followed`` under torchrun, which prints the same step records and result line
as the local child process does; :func:`train_on_cluster` reads them from the pods' log streams, passes every
other line to the ``swerl.train`` logger (a flow run's log, inside a flow) and returns the same
:class:`~swerl_core.train.job.FollowedRun` as the local launcher. The pods see ``SWERL_HOME`` at
``/data``; the caller sees the same volume at ``settings.home``, and paths are translated between the two.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from swerl_core.config import KubernetesConfig, Settings
from swerl_core.paths import is_safe_relative
from swerl_core.train import TrainError
from swerl_core.train.config import TrainConfig, load_train_config
from swerl_core.train.job import RESULT_MARK, STEP_MARK, FollowedRun, StepCallback, TrainJob, TrainStep
from swerl_core.train.k8s.jobs import ClusterAccess, apply_manifests, follow_job
from swerl_core.train.k8s.layout import ClusterLayout, K8sError
from swerl_core.train.k8s.manifests import HOME_MOUNT, render_training, write_manifests

log = logging.getLogger("swerl.train")

MANIFESTS_DIR = "k8s"  # under SWERL_HOME: the manifests of every run applied, one folder per Job
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_MAX_NAME = 52  # leaves room for the "-<index>-<suffix>" Kubernetes appends to the Job's pod names


def submit_training(
    cfg: TrainConfig, layout: ClusterLayout, out_dir: Path, access: ClusterAccess | None = None
) -> list[Path]:
    """Render a run's manifests into ``out_dir`` and apply them; returns the files. Follow it with
    ``follow_job(layout.run_name, layout.namespace, access)``."""
    manifests = render_training(cfg, layout)
    paths = write_manifests(manifests, out_dir)
    report = apply_manifests(manifests, access)
    log.info("run %s on Kubernetes: %s", layout.run_name, ", ".join(report))
    return paths


def job_name(run_name: str) -> str:
    """A Job name (an RFC 1123 label of at most 52 characters) for a training run name."""
    name = _NOT_DNS.sub("-", run_name.lower()).strip("-") or "swerl-train"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(run_name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9].rstrip('-')}-{digest}"


def cluster_layout(settings: Settings, job: TrainJob) -> ClusterLayout:
    """The cluster side of ``job`` from the ``train.kubernetes`` settings."""
    k8s: KubernetesConfig = settings.train.kubernetes
    return ClusterLayout(
        nodes=k8s.nodes,
        gpus_per_node=k8s.gpus_per_node,
        run_name=job_name(job.run_name),
        snapshot_id=job.snapshot_id,
        namespace=k8s.namespace,
        trainer_image=k8s.trainer_image,
        rollout_image=k8s.rollout_image,
        home_storage_class=k8s.storage_class,
        stage=job.stage,
        base_model=pod_path(settings, job.base_model) if job.base_model else None,
    )


def train_on_cluster(settings: Settings, job: TrainJob, on_step: StepCallback | None = None) -> FollowedRun:
    """Run ``job`` as a Kubernetes Job and follow it to its end; see the module docstring.

    Raises :class:`TrainError` with Kubernetes' reason (and the pods' last line) when the Job fails or
    succeeds without a result, and :class:`~swerl_core.train.k8s.K8sError` when the cluster cannot be reached, refuses
    the objects, or the Job disappears while followed.
    """
    k8s = settings.train.kubernetes
    access = ClusterAccess(k8s.kubeconfig, k8s.context)
    layout = cluster_layout(settings, job)
    submit_training(load_train_config(job.recipe), layout, settings.home / MANIFESTS_DIR / layout.run_name, access)
    output = _PodOutput(on_step)
    where = f"{layout.namespace}/{layout.run_name}"
    state = follow_job(layout.run_name, layout.namespace, access, k8s.poll_s, k8s.timeout_s, on_log=output.line)
    if state.phase == "failed":
        last = f"; last line: {output.tail[-1]}" if output.tail else ""
        raise TrainError(f"training job {where} failed: {state.message}{last}")
    if output.result is None:
        raise TrainError(f"training job {where} succeeded but no pod printed a result line")
    return _followed(settings, output.result)


def pod_path(settings: Settings, path: str) -> str:
    """``path`` as the pods see it: under ``/data`` when it lies under ``settings.home``, else unchanged."""
    try:
        inside = Path(path).expanduser().resolve().relative_to(settings.home.resolve())
    except ValueError:
        return path  # a models:/ URI, a hub id, or a path outside SWERL_HOME
    return str(PurePosixPath(HOME_MOUNT) / inside.as_posix())


def local_path(settings: Settings, path: str) -> Path:
    """A path a pod reported (under ``/data``) as this process sees it (under ``settings.home``)."""
    reported = PurePosixPath(path)
    if reported.is_relative_to(HOME_MOUNT):
        return settings.home / reported.relative_to(HOME_MOUNT)
    return Path(path)


class _PodOutput:
    """Reads the pods' log lines: step records (each step once), the result line, everything else logged."""

    def __init__(self, on_step: StepCallback | None) -> None:
        self.on_step = on_step
        self.step = 0
        self.result: dict[str, Any] | None = None
        self.tail: list[str] = []

    def line(self, pod: str, line: str) -> None:
        record = _marked(line, STEP_MARK)
        if record is not None:
            step = record.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                log.warning("[%s] a step record without an integer step, ignored: %s", pod, line[:200])
                return
            if step > self.step:  # every rank may report the same step
                self.step = step
                if self.on_step is not None:
                    self.on_step(TrainStep(self.step, record.get("total"), record.get("metrics") or {}))
            return
        result = _marked(line, RESULT_MARK)
        if result is not None:
            self.result = self.result or result
            return
        if line.strip():
            log.info("[%s] %s", pod, line)
            self.tail = [*self.tail[-19:], line]


def _marked(line: str, mark: str) -> dict[str, Any] | None:
    if not line.startswith(mark):
        return None
    try:
        record = json.loads(line[len(mark) :])
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _followed(settings: Settings, result: Mapping[str, Any]) -> FollowedRun:
    lacking = [key for key in ("run_name", "checkpoint_dir", "model_dir", "snapshot_id", "steps") if key not in result]
    if lacking or not isinstance(result["steps"], int):
        raise K8sError(f"the training pods' result line lacks {', '.join(lacking) or 'an integer steps'}")
    for key in ("checkpoint_dir", "model_dir"):
        reported = str(result[key])
        inside = reported.removeprefix(f"{HOME_MOUNT}/")
        if inside == reported or not is_safe_relative(inside):
            raise K8sError(f"the training pods reported {key} {reported[:120]!r}, which is not under {HOME_MOUNT}")
    return FollowedRun(
        run_name=result["run_name"],
        run_dir=local_path(settings, result["checkpoint_dir"]),
        model_dir=local_path(settings, result["model_dir"]),
        mlflow_run_id=result.get("mlflow_run_id"),
        snapshot_id=result["snapshot_id"],
        steps=int(result["steps"]),
        metrics=dict(result.get("metrics") or {}),
        restarts=0,  # the Job fails fast (backoffLimit 0); a new run resumes from the last checkpoint
        resumed_from_steps=(),
        checkpoint_uri=result.get("checkpoint_uri"),  # set when the pods publish final/ to storage.uri
    )
