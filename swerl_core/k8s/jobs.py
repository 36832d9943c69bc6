"""Apply rendered manifests with ``kubectl`` and follow a training Job until it succeeds or fails.

``kubectl`` carries the cluster credentials (kubeconfig or the pod's service account), so swerl holds none.
:func:`job_state` is a pure reading of a Job's ``status``; :func:`follow_job` polls it and reports each change.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from swerl_core.k8s.layout import ClusterLayout, K8sError
from swerl_core.k8s.manifests import render_training, write_manifests
from swerl_core.train.config import TrainConfig

log = logging.getLogger("swerl.train")

Phase = Literal["pending", "running", "succeeded", "failed"]


@dataclass(frozen=True)
class JobState:
    """Where a Job stands: its phase, pod counts and the reason Kubernetes gave for a terminal state."""

    phase: Phase
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    message: str = ""

    @property
    def done(self) -> bool:
        """True once the Job can change no more."""
        return self.phase in ("succeeded", "failed")


def job_state(job: Mapping[str, Any]) -> JobState:
    """Read a Job object (``kubectl get job -o json``) into a :class:`JobState`."""
    status = job.get("status") or {}
    counts = {key: int(status.get(key) or 0) for key in ("active", "succeeded", "failed")}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        message = condition.get("message") or condition.get("reason") or ""
        if condition.get("type") == "Complete":
            return JobState("succeeded", counts["active"], counts["succeeded"], counts["failed"], message)
        if condition.get("type") == "Failed":
            return JobState("failed", counts["active"], counts["succeeded"], counts["failed"], message)
    return JobState(
        "running" if counts["active"] else "pending", counts["active"], counts["succeeded"], counts["failed"]
    )


def submit_training(
    cfg: TrainConfig, layout: ClusterLayout, out_dir: Path, kubectl: str = "kubectl", dry_run: bool = False
) -> list[Path]:
    """Render a run's manifests into ``out_dir`` and apply them; returns the files. Follow it with
    ``follow_job(layout.run_name, layout.namespace)``."""
    paths = write_manifests(render_training(cfg, layout), out_dir)
    report = apply_manifests(paths, kubectl=kubectl, dry_run=dry_run)
    log.info("applied %d objects for run %s: %s", len(paths), layout.run_name, " | ".join(report.splitlines()))
    return paths


def apply_manifests(paths: Sequence[Path], kubectl: str = "kubectl", dry_run: bool = False) -> str:
    """``kubectl apply`` the files in order (client-side dry run if asked); returns kubectl's report."""
    command = [kubectl, "apply"]
    if dry_run:
        command += ["--dry-run=client", "--validate=false"]
    for path in paths:
        command += ["-f", str(path)]
    return _kubectl(command)


def follow_job(
    name: str,
    namespace: str,
    kubectl: str = "kubectl",
    poll_s: float = 15.0,
    timeout_s: float | None = None,
    on_change: Callable[[JobState], None] | None = None,
) -> JobState:
    """Poll Job ``name`` until it is done (or ``timeout_s`` passes); ``on_change`` sees every new state."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last: JobState | None = None
    while True:
        state = job_state(json.loads(_kubectl([kubectl, "get", "job", name, "-n", namespace, "-o", "json"])))
        if state != last:
            log.info(
                "job %s/%s: %s (active %d, succeeded %d, failed %d)",
                namespace,
                name,
                state.phase,
                state.active,
                state.succeeded,
                state.failed,
            )
            if on_change is not None:
                on_change(state)
            last = state
        if state.done:
            return state
        if deadline is not None and time.monotonic() >= deadline:
            raise K8sError(f"job {namespace}/{name} still {state.phase} after {timeout_s:.0f} s")
        time.sleep(poll_s)


def job_logs(name: str, namespace: str, kubectl: str = "kubectl", tail: int = 200) -> str:
    """The last ``tail`` log lines of every pod of Job ``name``, each line prefixed with its pod."""
    selector = f"job-name={name}"
    return _kubectl([kubectl, "logs", "-n", namespace, "-l", selector, "--prefix", f"--tail={tail}"])


def _kubectl(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise K8sError(f"{command[0]} not found: install kubectl to reach a cluster") from None
    except subprocess.TimeoutExpired:
        raise K8sError(f"{' '.join(command[:3])} did not answer within 120 s") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise K8sError(f"{' '.join(command[:3])} failed: {reason}")
    return done.stdout
