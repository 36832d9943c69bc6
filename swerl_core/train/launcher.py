"""Where a training stage runs: ``train.launcher`` chooses the local child process or a Kubernetes Job.

Both launchers follow the stage to its end and return the same :class:`~.job.FollowedRun`; the train flow
calls :func:`train_launched` and never knows which ran. This module only chooses; it holds no launching of
its own.
"""

from __future__ import annotations

from swerl_core.config import Settings
from swerl_core.train.followed import train_followed
from swerl_core.train.job import FollowedRun, StepCallback, TrainJob
from swerl_core.train.k8s import train_on_cluster


def train_launched(settings: Settings, job: TrainJob, on_step: StepCallback | None = None) -> FollowedRun:
    """Run ``job`` where ``settings.train.launcher`` says: a local child process (:func:`.followed.train_followed`)
    or a Kubernetes Job (:func:`.k8s.train_on_cluster`); either way followed to its end, same result."""
    if settings.train.launcher == "kubernetes":
        return train_on_cluster(settings, job, on_step)
    return train_followed(settings, job, on_step)
