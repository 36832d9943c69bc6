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

import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swerl_core.config.execution import ExecutionConfig, RepoEnvironment
from swerl_core.execution.environments import environment_folder
from swerl_core.execution.errors import first_line
from swerl_core.execution.pod import read_verdict, run_spec, spec_file
from swerl_core.execution.resolution import NOT_RUN, ExecutableInstance
from swerl_core.execution.sandbox import Limits, MiB
from swerl_core.k8s import (
    HOME_MOUNT,
    ClusterAccess,
    JobState,
    K8sError,
    Manifest,
    apply_manifests,
    delete_objects,
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
    """One Job's worth of runs: the repository's declaration, ``(instance, candidate patch)`` per completion index,
    and where each run stands in the list :func:`batches` was given."""

    declaration: RepoEnvironment
    runs: tuple[tuple[ExecutableInstance, str], ...]
    positions: tuple[int, ...]


def batches(
    config: ExecutionConfig, runs: Sequence[tuple[ExecutableInstance, str]]
) -> tuple[list[TestRunBatch], dict[int, Verdict]]:
    """``runs`` grouped by repository and cut to ``execution.kubernetes.batch_size`` runs and one ConfigMap's bytes,
    in order; and the verdicts of the runs no Job can take (``not_run``, keyed by position in ``runs``): a
    repository without a declaration, a run too large for a ConfigMap."""
    by_repo: dict[str, list[int]] = {}
    for position, (instance, _) in enumerate(runs):
        by_repo.setdefault(instance.repo.lower(), []).append(position)
    out: list[TestRunBatch] = []
    refused: dict[int, Verdict] = {}
    for positions in by_repo.values():
        repo = runs[positions[0]][0].repo
        declaration = config.environment_for(repo)
        if declaration is None:
            refused.update(dict.fromkeys(positions, (NOT_RUN, f"{repo} declares no execution environment")))
            continue
        batch: list[int] = []
        size = 0
        for position in positions:
            instance, patch = runs[position]
            bytes_ = len(json.dumps(run_spec(0, instance, patch, declaration, config, HOME_MOUNT)).encode())
            if bytes_ > CONFIG_MAP_BYTES:
                refused[position] = NOT_RUN, f"too large for a Kubernetes ConfigMap ({bytes_} bytes)"
                continue
            if batch and (len(batch) == config.kubernetes.batch_size or size + bytes_ > CONFIG_MAP_BYTES):
                out.append(TestRunBatch(declaration, tuple(runs[i] for i in batch), tuple(batch)))
                batch, size = [], 0
            batch.append(position)
            size += bytes_
        if batch:
            out.append(TestRunBatch(declaration, tuple(runs[i] for i in batch), tuple(batch)))
    return out, refused


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
    verdict as it arrives. A run without one is ``not_run`` with why: its pod ended without a verdict (evicted, out
    of memory, past its deadline) or printed a broken one, or its Job could not be applied or followed (the cluster
    unreachable, the objects refused, the Job lost). Each Job and its ConfigMap are deleted when the Job has ended
    or is given up, whatever ended it; the manifests stay under ``home/k8s/``."""
    access = ClusterAccess(config.kubernetes.kubeconfig, config.kubernetes.context)
    jobs, verdicts = batches(config, runs)
    token = secrets.token_hex(4)
    for number, batch in enumerate(jobs):
        name = job_name(f"swerl-tests-{token}-{number}", "swerl-tests")
        seen: dict[int, Verdict] = {}
        try:
            _run_batch(name, batch, config, home, access, seen, on_verdict or (lambda: None))
            lost = None
        except K8sError as exc:
            lost = f"K8sError: {first_line(exc)}"
        for index, position in enumerate(batch.positions):
            verdicts[position] = seen.get(index) or (NOT_RUN, lost or _LOST)
    return [verdicts[position] for position in range(len(runs))]


def _run_batch(
    name: str, batch: TestRunBatch, config: ExecutionConfig, home: Path, access: ClusterAccess,
    seen: dict[int, Verdict], on_verdict: Callable[[], None],
) -> None:  # fmt: skip
    """Apply one batch's Job and follow it to its end, putting each index's verdict into ``seen`` as it arrives
    (a lost or broken one as ``not_run``); the Job and its ConfigMap are deleted at the end, however it comes."""
    k8s = config.kubernetes
    manifests = render_test_runs(name, batch, config)
    write_manifests(manifests, home / MANIFESTS_DIR / name)

    def pod_line(pod: str, line: str) -> None:
        index = _completion_index(name, pod)
        if index is None or index in seen or index >= len(batch.runs):
            return
        try:
            record = read_verdict(line)
        except ValueError as exc:
            seen[index] = NOT_RUN, f"pod {pod} printed a broken verdict: {exc}"[:500]
            on_verdict()
            return
        if record is not None:
            if record["index"] == index:
                seen[index] = (record["reason"], record["detail"])
            else:
                seen[index] = NOT_RUN, f"pod {pod} printed the verdict of run {record['index']}"
            on_verdict()

    try:
        log.info("test runs %s on Kubernetes: %s", name, ", ".join(apply_manifests(manifests, access)))
        state = follow_job(name, k8s.namespace, access, k8s.poll_s, k8s.timeout_s, on_log=pod_line)
    finally:
        with contextlib.suppress(K8sError):
            delete_objects([m for m in manifests if m["kind"] in ("Job", "ConfigMap")], access)
    for index in range(len(batch.runs)):
        seen.setdefault(index, _lost(name, state))


def _completion_index(job: str, pod: str) -> int | None:
    """The completion index in the name of one of ``job``'s pods (``<job>-<index>-<suffix>``)."""
    index = pod.removeprefix(f"{job}-").split("-", 1)[0]
    return int(index) if pod.startswith(f"{job}-") and index.isdigit() else None


_LOST = "its Job was not followed to the end"


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
    deadline = int(config.test_timeout_s) + PREPARE_S
    pod = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "activeDeadlineSeconds": deadline,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [prepare],
        "containers": [test],
        "volumes": [
            {"name": "runs", "configMap": {"name": f"{name}-runs"}},
            {"name": "home", "persistentVolumeClaim": {"claimName": k8s.home_claim, "readOnly": True}},
            {"name": "work", "emptyDir": {"sizeLimit": f"{config.disk_mb + 1024}Mi"}},
            # In memory: a hard bound (a disk emptyDir's is checked now and then, and ends in an eviction).
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": f"{Limits().tmp_bytes // MiB}Mi"}},
        ],
    }
    waves = -(-len(batch.runs) // min(k8s.parallelism, len(batch.runs)))
    spec = {
        "activeDeadlineSeconds": waves * deadline + PREPARE_S,  # a Job nobody follows ends too
        "completionMode": "Indexed",  # pod <job>-<i> takes run-<i>.json
        "completions": len(batch.runs),
        "parallelism": min(k8s.parallelism, len(batch.runs)),
        "backoffLimitPerIndex": 0,  # a failed pod is that run's not_run; the other runs go on
        "ttlSecondsAfterFinished": 24 * 3600,
        "template": {"metadata": {"labels": _metadata(name, k8s.namespace, name)["labels"]}, "spec": pod},
    }
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(name, k8s.namespace, name), "spec": spec}


def _step(step: str) -> list[str]:
    runs = ["--runs", RUNS_MOUNT] if step == "prepare" else []
    return ["python", "-m", "swerl_core.execution.pod", step, "--work", WORK_MOUNT, *runs]


def _resources(cpu: str, memory_mb: int, scratch_mb: int) -> dict[str, Any]:
    amounts = {"cpu": cpu, "memory": f"{memory_mb}Mi", "ephemeral-storage": f"{scratch_mb}Mi"}
    return {"requests": amounts, "limits": amounts}
