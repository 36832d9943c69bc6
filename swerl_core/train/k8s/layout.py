"""Where and how a recipe runs on a cluster: nodes, images, storage, names. Sizes stay in the recipe.

``world_size`` of the recipe is rewritten to ``nodes × gpus_per_node`` for the cluster copy of the recipe and
validated again, so a node count that breaks the batch arithmetic is refused here, before anything is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from swerl_core.errors import ConfigError
from swerl_core.k8s.manifests import DNS_LABEL
from swerl_core.train.config import Stage, TrainConfig


@dataclass(frozen=True)
class ClusterLayout:
    """The cluster side of a training run: everything the recipe does not say."""

    nodes: int = 1
    gpus_per_node: int = 8
    run_name: str = "swerl-grpo"  # also the Job name and the torchrun rendezvous id
    snapshot_id: str | None = None  # None: the recipe's snapshot
    namespace: str = "swerl"
    trainer_image: str = "swerl-trainer:0.1.0"
    rollout_image: str = "swerl-rollout:0.1.0"
    home_claim: str = "swerl-home"  # ReadWriteMany PVC mounted at SWERL_HOME on every pod
    home_storage_class: str | None = None  # None: the cluster's default class
    home_size: str = "2Ti"
    env_config_map: str = "swerl-env"  # SWERL_*, MLFLOW_TRACKING_URI, PREFECT_API_URL (infra/k8s/swerl-env.yaml)
    secret: str = "swerl-secrets"  # GITHUB_TOKEN, HF_TOKEN, AWS_* (never rendered here)
    rendezvous_port: int = 29500
    shm_size: str = "64Gi"
    gpu_node_selector: tuple[tuple[str, str], ...] = (("nvidia.com/gpu.present", "true"),)
    resume: bool = False
    stage: Stage = "grpo"  # sft runs no rollout server
    base_model: str | None = None  # a path as the pods see it (under /data), overriding the recipe's

    def __post_init__(self) -> None:
        for key in ("nodes", "gpus_per_node", "rendezvous_port"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"invalid setting {key}: expected a positive integer, got {value!r}")
        for key in ("run_name", "namespace", "home_claim", "env_config_map", "secret"):
            if not DNS_LABEL.match(getattr(self, key)) or len(getattr(self, key)) > 52:
                raise ConfigError(
                    f"invalid setting {key}: expected a lowercase DNS label of at most 52 characters "
                    f"(a-z, 0-9, '-'), got {getattr(self, key)!r}"
                )

    @property
    def world_size(self) -> int:
        """Training processes across all nodes."""
        return self.nodes * self.gpus_per_node

    @property
    def head_host(self) -> str:
        """DNS name of the index-0 pod, which hosts the c10d rendezvous store."""
        return f"{self.run_name}-0.{self.run_name}.{self.namespace}.svc"


def cluster_recipe(cfg: TrainConfig, layout: ClusterLayout) -> TrainConfig:
    """The recipe as the cluster runs it: ``world_size`` set to the layout's and re-validated."""
    try:
        return replace(cfg, world_size=layout.world_size)
    except ConfigError as exc:
        raise ConfigError(
            f"recipe {cfg.name!r} does not fit {layout.nodes} node(s) × {layout.gpus_per_node} GPUs: {exc}"
        ) from None


def rollout_endpoint(cfg: TrainConfig) -> tuple[str, int]:
    """Service name and port of the rollout server, read from ``grpo.vllm_server_url``."""
    url = cfg.grpo.vllm_server_url
    if not cfg.grpo.use_vllm or not url:
        raise ConfigError(
            f"invalid setting grpo.vllm_server_url: recipe {cfg.name!r} must set grpo.use_vllm and a server URL "
            "to run rollouts on the cluster"
        )
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not DNS_LABEL.match(host):
        raise ConfigError(
            f"invalid setting grpo.vllm_server_url: host {host!r} must be a bare Service name such as rollout-0"
        )
    return host, parts.port or (443 if parts.scheme == "https" else 80)
