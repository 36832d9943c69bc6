"""Render the Kubernetes objects of one multi-node GRPO run from a recipe and a :class:`ClusterLayout`.

Training is an indexed ``batch/v1`` Job (one pod per node, ``completionMode: Indexed``) whose pods find each
other through a headless Service: pod ``<run>-0`` hosts torchrun's c10d rendezvous store and every pod runs the
same command, so start order does not matter and no SSH is involved. The rollout server is a Deployment running
``swerl-rollout`` with the recipe's tensor/data parallelism behind a headless Service named after the host in
``grpo.vllm_server_url``. Weight sync by NCCL (TRL 1.16) runs the other way: the vLLM workers join an NCCL group
that the trainer's rank 0 hosts on its own pod IP at ``VLLM_GROUP_PORT``, so pods must reach each other directly
(a flat pod network; allow it in any NetworkPolicy). Directory sync needs only the home volume, which every pod
mounts at ``HOME_MOUNT`` (ReadWriteMany). Manifests are plain dicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from swerl_core.k8s import HOME_MOUNT, K8sError, Manifest
from swerl_core.train.config import TrainConfig, train_config_dict
from swerl_core.train.k8s.layout import ClusterLayout, cluster_recipe, rollout_endpoint
from swerl_core.train.rollout_client import VLLM_GROUP_PORT

RECIPE_MOUNT = "/etc/swerl"
RECIPE_FILE = "recipe.yaml"
_GPU = "nvidia.com/gpu"


def torchrun_command(cfg: TrainConfig, layout: ClusterLayout) -> list[str]:
    """The command every training pod runs: torchrun with c10d rendezvous around the followed trainer.

    ``swerl_core.train.followed`` prints the progress records and the result line that :mod:`.training` reads back
    from the pods' logs, exactly as the local launcher reads them from its child process.
    """
    snapshot = layout.snapshot_id or cfg.snapshot
    command = [
        "torchrun",
        f"--nnodes={layout.nodes}",
        f"--nproc-per-node={layout.gpus_per_node}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={layout.head_host}:{layout.rendezvous_port}",
        f"--rdzv-id={layout.run_name}",
        "--max-restarts=0",  # a lost node fails the Job; the next attempt resumes from the last checkpoint
        "-m",
        "swerl_core.train.followed",
        "--recipe",
        f"{RECIPE_MOUNT}/{RECIPE_FILE}",
        "--stage",
        layout.stage,
        "--run-name",
        layout.run_name,
    ]
    if snapshot:  # else the newest snapshot under SWERL_HOME, as for `swerl train`
        command += ["--snapshot", snapshot]
    if layout.base_model:
        command += ["--model", layout.base_model]
    if layout.resume:
        command.append("--resume")
    return command


def render_training(cfg: TrainConfig, layout: ClusterLayout) -> list[Manifest]:
    """All objects of one run, in apply order: home volume, recipe, rollout Service, the NetworkPolicy that admits
    only the run's training pods to the rollout server, rollout Deployment, training Service, training Job.

    An SFT stage generates nothing, so it gets no rollout server.
    """
    cluster_cfg = cluster_recipe(cfg, layout)
    rollout: list[Manifest] = []
    if layout.stage == "grpo":
        rollout_host, rollout_port = rollout_endpoint(cluster_cfg)
        rollout = [
            _rollout_service(layout, rollout_host, rollout_port),
            _rollout_network_policy(layout, rollout_host),  # before the server exists: it is never open to all
            _rollout_deployment(cluster_cfg, layout, rollout_host, rollout_port),
        ]
    return [
        _home_claim(layout),
        _recipe_config_map(cluster_cfg, layout),
        *rollout,
        _training_service(layout),
        _training_job(cluster_cfg, layout),
    ]


def _metadata(name: str, layout: ClusterLayout, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": layout.namespace, "labels": _labels(layout, component)}


def _labels(layout: ClusterLayout, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "swerl",
        "app.kubernetes.io/component": component,
        "swerl/run": layout.run_name,
    }


def _home_claim(layout: ClusterLayout) -> Manifest:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],  # ZeRO-3 checkpoints are written by every rank on every node
        "resources": {"requests": {"storage": layout.home_size}},
    }
    if layout.home_storage_class:
        spec["storageClassName"] = layout.home_storage_class
    meta = {"name": layout.home_claim, "namespace": layout.namespace, "labels": {"app.kubernetes.io/name": "swerl"}}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def _recipe_config_map(cfg: TrainConfig, layout: ClusterLayout) -> Manifest:
    recipe = yaml.safe_dump(train_config_dict(cfg), sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(f"{layout.run_name}-recipe", layout, "trainer"),
        "data": {RECIPE_FILE: recipe},
    }


def _training_service(layout: ClusterLayout) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(layout.run_name, layout, "trainer"),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # the rendezvous host must resolve before any pod is ready
            "selector": _labels(layout, "trainer"),
            "ports": [{"name": "rendezvous", "port": layout.rendezvous_port}],
        },
    }


def _training_job(cfg: TrainConfig, layout: ClusterLayout) -> Manifest:
    container = {
        "name": "trainer",
        "image": layout.trainer_image,
        "command": torchrun_command(cfg, layout),
        "env": [
            {"name": "SWERL_HOME", "value": HOME_MOUNT},
            {"name": "NCCL_DEBUG", "value": "WARN"},
            {"name": "TORCH_NCCL_ASYNC_ERROR_HANDLING", "value": "1"},
        ],
        "envFrom": _env_sources(layout),
        "ports": [
            {"name": "rendezvous", "containerPort": layout.rendezvous_port},
            {"name": "weight-sync", "containerPort": VLLM_GROUP_PORT},
        ],
        "resources": _gpus(layout.gpus_per_node),
        "volumeMounts": [
            *_common_mounts(),
            {"name": "recipe", "mountPath": RECIPE_MOUNT, "readOnly": True},
        ],
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    volumes = [
        *_common_volumes(layout),
        {"name": "recipe", "configMap": {"name": f"{layout.run_name}-recipe"}},
    ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(layout.run_name, layout, "trainer"),
        "spec": {
            "completionMode": "Indexed",  # pods are <run>-0 … <run>-(N-1); index 0 hosts the rendezvous
            "completions": layout.nodes,
            "parallelism": layout.nodes,
            "backoffLimit": 0,  # one failed rank stalls all others: fail the whole Job fast
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": _labels(layout, "trainer")},
                "spec": {
                    "subdomain": layout.run_name,
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": volumes,
                    **_gpu_placement(layout),
                },
            },
        },
    }


def _rollout_service(layout: ClusterLayout, host: str, port: int) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(host, layout, "rollout"),
        "spec": {
            "selector": _labels(layout, "rollout"),
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
        },
    }


def _rollout_network_policy(layout: ClusterLayout, host: str) -> Manifest:
    """Only this run's training pods may open connections to its rollout pod, on any port (NCCL sync may connect
    either way). ``swerl-rollout`` serves vLLM's development endpoints (``/collective_rpc``, ``/update_weights``,
    ``/sleep``…): whoever reaches it can load other weights or run methods in its workers. Kubelet probes come from
    the node, which a NetworkPolicy always admits."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(f"{host}-trainers-only", layout, "rollout"),
        "spec": {
            "podSelector": {"matchLabels": _labels(layout, "rollout")},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": _labels(layout, "trainer")}}]}],
        },
    }


def _rollout_deployment(cfg: TrainConfig, layout: ClusterLayout, host: str, port: int) -> Manifest:
    rollout = cfg.rollout
    if cfg.grpo.vllm_weight_sync == "directory" and Path(cfg.grpo.vllm_weights_dir or ".").is_absolute():
        raise K8sError(
            "grpo.vllm_weights_dir must be relative to SWERL_HOME on Kubernetes: trainer and rollout pods share "
            "only the home volume"
        )
    max_len = rollout.max_model_len or cfg.max_prompt_length + cfg.max_completion_length
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}
    container = {
        "name": "vllm",
        "image": layout.rollout_image,
        "args": [
            "--port",
            str(port),
            "--model",
            cfg.base_model,
            "--tensor-parallel-size",
            str(rollout.tensor_parallel_size),
            "--data-parallel-size",
            str(rollout.data_parallel_size),
            "--gpu-memory-utilization",
            str(rollout.gpu_memory_utilization),
            "--max-model-len",
            str(max_len),
            "--weight-sync",
            cfg.grpo.vllm_weight_sync,
            # Directory sync: the trainer writes versions inside SWERL_HOME, which this pod mounts at the same path.
            *(["--weights-dir", HOME_MOUNT] if cfg.grpo.vllm_weight_sync == "directory" else []),
        ],
        "workingDir": HOME_MOUNT,  # a relative base_model resolves under SWERL_HOME, as for the trainer
        "envFrom": _env_sources(layout),
        "ports": [{"name": "http", "containerPort": port}],
        "resources": _gpus(rollout.gpus),
        "startupProbe": {**probe, "failureThreshold": 180},  # up to 30 min to load and compile a 70B model
        "readinessProbe": probe,
        "volumeMounts": _common_mounts(),
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(host, layout, "rollout"),
        "spec": {
            "replicas": 1,  # the trainer pushes weights to exactly one server
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": _labels(layout, "rollout")},
            "template": {
                "metadata": {"labels": _labels(layout, "rollout")},
                "spec": {"containers": [container], "volumes": _common_volumes(layout), **_gpu_placement(layout)},
            },
        },
    }


def _gpus(count: int) -> dict[str, Any]:
    return {"requests": {_GPU: count}, "limits": {_GPU: count}}


def _env_sources(layout: ClusterLayout) -> list[dict[str, Any]]:
    return [
        {"configMapRef": {"name": layout.env_config_map}},
        {"secretRef": {"name": layout.secret, "optional": True}},
    ]


def _gpu_placement(layout: ClusterLayout) -> dict[str, Any]:
    return {
        "nodeSelector": dict(layout.gpu_node_selector),
        "tolerations": [{"key": _GPU, "operator": "Exists", "effect": "NoSchedule"}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
    }


def _common_mounts() -> list[dict[str, Any]]:
    return [{"name": "home", "mountPath": HOME_MOUNT}, {"name": "dshm", "mountPath": "/dev/shm"}]


def _common_volumes(layout: ClusterLayout) -> list[dict[str, Any]]:
    return [
        {"name": "home", "persistentVolumeClaim": {"claimName": layout.home_claim}},
        # NCCL and the DataLoader workers use /dev/shm; the container default of 64 MiB is far too small.
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": layout.shm_size}},
    ]
