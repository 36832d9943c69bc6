"""Kubernetes manifests for multi-node GRPO, rendered from a training recipe; and following the job they start.

The recipe (``deployments/configs/*.yaml``) stays the single source of sizes: :mod:`.manifests` turns it and a
:class:`ClusterLayout` (nodes, images, storage) into plain manifest dicts — an indexed ``batch/v1`` Job whose pods
run ``torchrun`` with c10d rendezvous (no SSH, no CRD), its headless Service, the recipe as a ConfigMap, and the
vLLM rollout Deployment + Service. :mod:`swerl_core.k8s` applies them through the Kubernetes API
(``kubernetes_asyncio``) and follows the Job's state and its pods' logs; :mod:`.training` runs a training stage
that way for the train flow (``train.launcher: kubernetes``). This package never imports Prefect.
"""

from swerl_core.train.k8s.layout import ClusterLayout
from swerl_core.train.k8s.manifests import render_training, torchrun_command
from swerl_core.train.k8s.training import submit_training, train_on_cluster

__all__ = [
    "ClusterLayout",
    "render_training",
    "submit_training",
    "torchrun_command",
    "train_on_cluster",
]
