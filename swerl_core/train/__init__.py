"""Training: GRPO and SFT recipes over TRL on the SWE-RL reward, plus the offline tiny-model path.

The package owns the recipe config (:mod:`.config`), the mapping onto TRL's ``GRPOConfig`` /
``SFTConfig`` (:mod:`.trl_args`), snapshot loading (:mod:`.snapshot`), the reward adapter
(:mod:`.reward_fn`), checkpoints (:mod:`.checkpoints`), MLflow tracking (:mod:`.tracking`) and the
entry function :func:`swerl_core.train.trainer.train`. It never schedules anything (flows do) and
never downloads weights or data itself.

Importing this package is cheap: torch, transformers, TRL and MLflow load only inside the
modules that need them.
"""

from __future__ import annotations

from swerl_core.errors import SwerlError


class TrainError(SwerlError):
    """Training cannot start or continue; the message says what to fix (a path, a snapshot, a size)."""
