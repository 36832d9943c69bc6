"""Kubernetes manifests for multi-node GRPO, rendered from a training recipe; and following the job they start.

The recipe (``deployments/configs/*.yaml``) stays the single source of sizes: :mod:`.manifests` turns it and a
:class:`ClusterLayout` (nodes, images, storage) into plain manifest dicts — an indexed ``batch/v1`` Job whose pods
run ``torchrun`` with c10d rendezvous (no SSH, no CRD), its headless Service, the recipe as a ConfigMap, and the
vLLM rollout Deployment + Service. :mod:`.jobs` applies them with ``kubectl`` and follows the Job's state. This
package never imports Prefect or the Kubernetes client: it produces data and runs ``kubectl``.
"""

from swerl_core.k8s.jobs import JobState, apply_manifests, follow_job, job_logs, job_state, submit_training
from swerl_core.k8s.layout import ClusterLayout, K8sError
from swerl_core.k8s.manifests import render_training, torchrun_command, write_manifests

__all__ = [
    "ClusterLayout",
    "JobState",
    "K8sError",
    "apply_manifests",
    "follow_job",
    "job_logs",
    "job_state",
    "render_training",
    "submit_training",
    "torchrun_command",
    "write_manifests",
]
