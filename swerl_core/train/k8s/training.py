"""A training stage as a Kubernetes Job: render it from the recipe, apply it, follow it, read its result back.

The pods run ``swerl_core.train.followed`` under torchrun on the effective recipe (a ConfigMap), and print the same
progress records and result line as the local child process does; :func:`train_on_cluster` reads them from the
pods' log streams (:class:`~swerl_core.train.followed.TrainingOutput`), passes every other line to the
``swerl.train`` logger (a flow run's log, inside a flow) and returns the same
:class:`~swerl_core.train.result.TrainResult` as the other launchers. The pods see ``SWERL_HOME`` at ``/data``;
the caller sees the same volume at ``settings.home``, and paths are translated between the two.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path, PurePosixPath

from swerl_core.config import KubernetesConfig, Settings
from swerl_core.k8s import HOME_MOUNT, ClusterAccess, K8sError, apply_manifests, follow_job, write_manifests
from swerl_core.k8s import job_name as dns_job_name
from swerl_core.paths import is_safe_relative
from swerl_core.progress import ProgressCallback
from swerl_core.runs import new_run_name
from swerl_core.train import TrainError, TrainRequest
from swerl_core.train.config import TrainConfig
from swerl_core.train.followed import PROGRESS_MARK, RESULT_MARK, TrainingOutput
from swerl_core.train.k8s.layout import ClusterLayout, cluster_recipe
from swerl_core.train.k8s.manifests import render_training
from swerl_core.train.result import TrainResult

log = logging.getLogger("swerl.train")

MANIFESTS_DIR = "k8s"  # under SWERL_HOME: the manifests of every run applied, one folder per Job


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
    return dns_job_name(run_name, "swerl-train")


def recipe_on_cluster(settings: Settings, cfg: TrainConfig) -> TrainConfig:
    """``cfg`` as the ``train.kubernetes`` settings run it: ``world_size`` their nodes × GPUs per node."""
    k8s: KubernetesConfig = settings.train.kubernetes
    return cluster_recipe(cfg, ClusterLayout(nodes=k8s.nodes, gpus_per_node=k8s.gpus_per_node))


def cluster_layout(settings: Settings, request: TrainRequest) -> ClusterLayout:
    """The cluster side of ``request`` from the ``train.kubernetes`` settings (a fresh run name unless it names one)."""
    k8s: KubernetesConfig = settings.train.kubernetes
    cfg, stage = request.recipe, request.stage
    snapshot_id = request.snapshot_id or cfg.snapshot
    if not snapshot_id:
        raise TrainError(f"no snapshot to train on: none requested and recipe {cfg.name!r} names none")
    run_name = request.run_name or new_run_name(cfg.name, stage, snapshot_id)
    return ClusterLayout(
        nodes=k8s.nodes,
        gpus_per_node=k8s.gpus_per_node,
        run_name=job_name(run_name),
        snapshot_id=snapshot_id,
        namespace=k8s.namespace,
        trainer_image=k8s.trainer_image,
        rollout_image=k8s.rollout_image,
        home_storage_class=k8s.storage_class,
        resume=request.resume,
        stage=stage,
        base_model=pod_path(settings, request.base_model) if request.base_model else None,
    )


def train_on_cluster(
    settings: Settings, request: TrainRequest, progress: ProgressCallback | None = None
) -> TrainResult:
    """Run ``request`` as a Kubernetes Job and follow it to its end; see the module docstring.

    Raises :class:`TrainError` with Kubernetes' reason (and the pods' last line) when the Job fails or
    succeeds without a result, and :class:`~swerl_core.k8s.K8sError` when the cluster cannot be reached, refuses
    the objects, the Job disappears while followed, or the pods' result line cannot be read.
    """
    k8s = settings.train.kubernetes
    access = ClusterAccess(k8s.kubeconfig, k8s.context)
    layout = cluster_layout(settings, request)
    submit_training(request.recipe, layout, settings.home / MANIFESTS_DIR / layout.run_name, access)
    where = f"{layout.namespace}/{layout.run_name}"
    output = TrainingOutput(progress, lambda line: None)

    def pod_line(pod: str, line: str) -> None:
        if line.strip() and not line.startswith((PROGRESS_MARK, RESULT_MARK)):
            log.info("[%s] %s", pod, line)
        output.line(line)

    state = follow_job(layout.run_name, layout.namespace, access, k8s.poll_s, k8s.timeout_s, on_log=pod_line)
    if state.phase == "failed":
        last = f"; last line: {output.tail[-1]}" if output.tail else ""
        raise TrainError(f"training job {where} failed: {state.message}{last}")
    if output.bad_result is not None:
        raise K8sError(f"the training pods' result line {output.bad_result}")
    if output.result is None:
        raise TrainError(f"training job {where} succeeded but no pod printed a result line")
    return _local_result(settings, output.result)


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


def _local_result(settings: Settings, result: TrainResult) -> TrainResult:
    """The pods' result with its paths as this process sees them; paths must lie under ``/data``."""
    for key in ("checkpoint_dir", "model_dir"):
        reported = str(getattr(result, key))
        inside = reported.removeprefix(f"{HOME_MOUNT}/")
        if inside == reported or not is_safe_relative(inside):
            raise K8sError(f"the training pods reported {key} {reported[:120]!r}, which is not under {HOME_MOUNT}")
    # The Job fails fast (backoffLimit 0): a new run resumes from the last checkpoint, never a restart here.
    return replace(
        result,
        checkpoint_dir=local_path(settings, str(result.checkpoint_dir)),
        model_dir=local_path(settings, str(result.model_dir)),
    )
