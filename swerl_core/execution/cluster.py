"""Candidate patches judged on a Kubernetes cluster: one indexed Job per batch of runs, one pod per run.

``execution.backend: kubernetes`` sends evaluation's test runs here instead of this machine's bubblewrap. Runs are
grouped by repository (a Job's pods share one image and one environment), then cut into batches of at most
``execution.kubernetes.batch_size`` runs whose ConfigMap stays under Kubernetes' 1 MiB. Each pod (:mod:`.pod`):

- an init container ``prepare`` (``execution.kubernetes.image``, uid 1000, no capabilities) sees ``SWERL_HOME``'s
  volume read-only at ``/data`` and writes the prepared tree into the pod's scratch volume;
- a container ``test`` (the repository's ``image``, else the same) sees that tree and, of the volume, only the
  repository's built environment, read-only, at the path it was built at; it runs the tests as a fresh uid (it is
  root with only the capabilities lending the tree needs) and prints the verdict line.

Every test-run pod gets no service-account token, a read-only root file system, CPU, memory and scratch limits, an
active deadline, and no network in or out (a NetworkPolicy selecting them, applied with each batch). The Job has
``backoffLimitPerIndex: 0``: a pod that fails is not retried and its run is ``not_run``, the others go on. The
manifests applied are kept under ``SWERL_HOME/k8s/<job>/``, as for training.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.config.execution import ExecutionConfig, RepoEnvironment
from swerl_core.execution.environments import environment_folder
from swerl_core.execution.pod import read_verdict, run_spec, spec_file
from swerl_core.execution.resolution import NOT_RUN, ExecutableInstance
from swerl_core.k8s import (
    HOME_MOUNT,
    ClusterAccess,
    JobState,
    K8sError,
    Manifest,
    apply_manifests,
    follow_job,
    job_name,
    write_manifests,
)

log = logging.getLogger("swerl.execution")

COMPONENT = "test-run"
NETWORK_POLICY = "swerl-test-runs"
MANIFESTS_DIR = "k8s"  # under SWERL_HOME, one folder per Job (training's convention)
RUNS_MOUNT = "/etc/swerl-runs"
WORK_MOUNT = "/work"
CONFIG_MAP_BYTES = 900_000  # Kubernetes refuses a ConfigMap over 1 MiB; the rest is room for its metadata
PREPARE_S = 600  # the init container's checkout, on top of execution.test_timeout_s in the pod's deadline
PREPARE_UID = 1000  # swerl's images run as 1000:1000, the owner of SWERL_HOME's files (git refuses others' mirrors)
_MEMORY_HEADROOM_MB = 1024  # the runner and pytest's parent process, beside the tests' own address space limit
_TEST_CAPABILITIES = ["CHOWN", "FOWNER", "DAC_OVERRIDE", "SETUID", "SETGID", "KILL"]
Verdict = tuple[str, str]  # (reason, detail)


@dataclass(frozen=True)
class TestRunBatch:
    """One Job's worth of runs: the repository's declaration and ``(instance, candidate patch)`` per index."""

    declaration: RepoEnvironment
    runs: tuple[tuple[ExecutableInstance, str], ...]


def batches(config: ExecutionConfig, runs: Sequence[tuple[ExecutableInstance, str]]) -> list[TestRunBatch]:
    """``runs`` grouped by repository and cut to ``execution.kubernetes.batch_size`` runs and one ConfigMap's bytes,
    in order. Raises :class:`K8sError` for a repository without a declaration or a run too large for a ConfigMap."""
    by_repo: dict[str, list[tuple[ExecutableInstance, str]]] = {}
    for instance, patch in runs:
        by_repo.setdefault(instance.repo.lower(), []).append((instance, patch))
    out: list[TestRunBatch] = []
    for grouped in by_repo.values():
        declaration = config.environment_for(grouped[0][0].repo)
        if declaration is None:
            raise K8sError(f"{grouped[0][0].repo} declares no execution environment (execution.environments)")
        batch: list[tuple[ExecutableInstance, str]] = []
        size = 0
        for instance, patch in grouped:
            bytes_ = len(json.dumps(run_spec(0, instance, patch, declaration, config, HOME_MOUNT)).encode())
            if bytes_ > CONFIG_MAP_BYTES:
                raise K8sError(f"a candidate of {instance.instance_id} is too large for a ConfigMap ({bytes_} bytes)")
            if batch and (len(batch) == config.kubernetes.batch_size or size + bytes_ > CONFIG_MAP_BYTES):
                out.append(TestRunBatch(declaration, tuple(batch)))
                batch, size = [], 0
            batch.append((instance, patch))
            size += bytes_
        out.append(TestRunBatch(declaration, tuple(batch)))
    return out


def render_test_runs(name: str, batch: TestRunBatch, config: ExecutionConfig) -> list[Manifest]:
    """The objects of one batch, in apply order: the NetworkPolicy isolating test-run pods, the runs' ConfigMap and
    the indexed Job ``name``."""
    k8s = config.kubernetes
    data = {
        spec_file(index): json.dumps(run_spec(index, instance, patch, batch.declaration, config, HOME_MOUNT))
        for index, (instance, patch) in enumerate(batch.runs)
    }
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(f"{name}-runs", k8s.namespace, name),
                  "data": data}  # fmt: skip
    return [_network_policy(k8s.namespace), config_map, _job(name, batch, config)]


def resolve_on_cluster(
    config: ExecutionConfig,
    home: Path,
    runs: Sequence[tuple[ExecutableInstance, str]],
    on_verdict: Callable[[], None] | None = None,
) -> list[Verdict]:
    """The verdict on each of ``runs`` (same order), judged by Jobs on the cluster; ``on_verdict`` is called once per
    verdict as it arrives. A run whose pod printed no verdict (evicted, out of memory, past its deadline)
    is ``not_run`` with what Kubernetes said. Raises :class:`K8sError` when the cluster cannot be reached, refuses
    the objects or loses a Job; the manifests stay under ``home/k8s/``."""
    access = ClusterAccess(config.kubernetes.kubeconfig, config.kubernetes.context)
    verdicts: dict[tuple[str, str], Verdict] = {}
    token = secrets.token_hex(4)
    for number, batch in enumerate(batches(config, runs)):
        name = job_name(f"swerl-tests-{token}-{number}", "swerl-tests")
        seen = _run_batch(name, batch, config, home, access, on_verdict or (lambda: None))
        for index, (instance, patch) in enumerate(batch.runs):
            verdicts[(instance.instance_id, patch)] = seen[index]
    return [verdicts[(instance.instance_id, patch)] for instance, patch in runs]


def _run_batch(
    name: str, batch: TestRunBatch, config: ExecutionConfig, home: Path, access: ClusterAccess,
    on_verdict: Callable[[], None],
) -> dict[int, Verdict]:  # fmt: skip
    """Apply one batch's Job, follow it to its end and return the verdict of each of its indexes."""
    k8s = config.kubernetes
    manifests = render_test_runs(name, batch, config)
    write_manifests(manifests, home / MANIFESTS_DIR / name)
    log.info("test runs %s on Kubernetes: %s", name, ", ".join(apply_manifests(manifests, access)))
    seen: dict[int, Verdict] = {}

    def pod_line(pod: str, line: str) -> None:
        try:
            record = read_verdict(line)
        except ValueError as exc:
            raise K8sError(f"pod {pod} printed {exc}") from None
        if record is not None and record["index"] < len(batch.runs) and record["index"] not in seen:
            seen[record["index"]] = (record["reason"], record["detail"])
            on_verdict()

    state = follow_job(name, k8s.namespace, access, k8s.poll_s, k8s.timeout_s, on_log=pod_line)
    return {index: seen.get(index) or _lost(name, state) for index in range(len(batch.runs))}


def _lost(name: str, state: JobState) -> Verdict:
    said = f": {state.message}" if state.message else ""
    return NOT_RUN, f"the pod of job {name} printed no verdict (the job {state.phase}{said})"


def _metadata(name: str, namespace: str, job: str | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "swerl", "app.kubernetes.io/component": COMPONENT}
    if job is not None:
        labels["swerl/job"] = job
    return {"name": name, "namespace": namespace, "labels": labels}


def _network_policy(namespace: str) -> Manifest:
    selector = {"app.kubernetes.io/name": "swerl", "app.kubernetes.io/component": COMPONENT}
    # Both directions listed, no rule given: nothing in, nothing out (the cluster DNS included).
    spec = {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"]}
    meta = _metadata(NETWORK_POLICY, namespace)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": spec}


def _job(name: str, batch: TestRunBatch, config: ExecutionConfig) -> Manifest:
    k8s = config.kubernetes
    environment = environment_folder(Path(HOME_MOUNT), batch.declaration)
    runs_mount = {"name": "runs", "mountPath": RUNS_MOUNT, "readOnly": True}
    work_mount = {"name": "work", "mountPath": WORK_MOUNT}
    prepare = {
        "name": "prepare",
        "image": k8s.image,
        "command": _step("prepare"),
        "env": [{"name": "SWERL_HOME", "value": HOME_MOUNT}],
        "volumeMounts": [{"name": "home", "mountPath": HOME_MOUNT, "readOnly": True}, runs_mount, work_mount],
        "securityContext": {
            "runAsUser": PREPARE_UID,
            "runAsGroup": PREPARE_UID,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": _resources(k8s.cpu, 1024, 1024),
    }
    test = {
        "name": "test",
        "image": batch.declaration.image or k8s.image,
        "command": _step("test"),
        "env": [{"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        "volumeMounts": [
            runs_mount,
            work_mount,
            {"name": "tmp", "mountPath": "/tmp"},
            # Of SWERL_HOME only the environment: the mirrors (which hold the fix) stay out of the tests' sight.
            {
                "name": "home",
                "mountPath": str(environment),
                "subPath": environment.relative_to(HOME_MOUNT).as_posix(),
                "readOnly": True,
            },
        ],  # fmt: skip
        "securityContext": {
            "runAsUser": 0,  # to run the tests as a fresh uid; with only the capabilities that needs
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"], "add": _TEST_CAPABILITIES},
        },
        "resources": _resources(k8s.cpu, config.memory_mb + _MEMORY_HEADROOM_MB, config.disk_mb + 1024),
    }
    pod = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "activeDeadlineSeconds": int(config.test_timeout_s) + PREPARE_S,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [prepare],
        "containers": [test],
        "volumes": [
            {"name": "runs", "configMap": {"name": f"{name}-runs"}},
            {"name": "home", "persistentVolumeClaim": {"claimName": k8s.home_claim, "readOnly": True}},
            {"name": "work", "emptyDir": {"sizeLimit": f"{config.disk_mb + 1024}Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}},
        ],
    }
    spec = {
        "completionMode": "Indexed",  # pod <job>-<i> takes run-<i>.json
        "completions": len(batch.runs),
        "parallelism": min(k8s.parallelism, len(batch.runs)),
        "backoffLimitPerIndex": 0,  # a failed pod is that run's not_run; the other runs go on
        "ttlSecondsAfterFinished": 24 * 3600,
        "template": {"metadata": {"labels": _metadata(name, k8s.namespace, name)["labels"]}, "spec": pod},
    }
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(name, k8s.namespace, name), "spec": spec}


def _step(step: str) -> list[str]:
    return ["python", "-m", "swerl_core.execution.pod", step, "--runs", RUNS_MOUNT, "--work", WORK_MOUNT]


def _resources(cpu: str, memory_mb: int, scratch_mb: int) -> dict[str, Any]:
    amounts = {"cpu": cpu, "memory": f"{memory_mb}Mi", "ephemeral-storage": f"{scratch_mb}Mi"}
    return {"requests": amounts, "limits": amounts}
