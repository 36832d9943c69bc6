"""Kubernetes for every stage that runs work on a cluster: applying rendered objects through the API, following a
Job and its pods' logs, and what all rendered manifests share. Training's Job (:mod:`swerl_core.train.k8s`) and
the execution sandbox's test-run Jobs (:mod:`swerl_core.execution.cluster`) are built on it. Never imports a stage
(nor Prefect)."""

from swerl_core.k8s.jobs import (
    ClusterAccess,
    JobState,
    apply_manifests,
    delete_objects,
    follow_job,
    job_logs,
    job_state,
)
from swerl_core.k8s.manifests import HOME_MOUNT, K8sError, Manifest, job_name, write_manifests

__all__ = [
    "HOME_MOUNT",
    "ClusterAccess",
    "JobState",
    "K8sError",
    "Manifest",
    "apply_manifests",
    "delete_objects",
    "follow_job",
    "job_logs",
    "job_name",
    "job_state",
    "write_manifests",
]
