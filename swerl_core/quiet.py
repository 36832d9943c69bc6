"""Keep library chatter off the user's terminal: a swerl program's output is swerl's own lines and progress.

Set before any heavy import (environment variables the libraries read when they load): Hugging Face
weight-loading, download and dataset-map bars, transformers' advisory notices, MLflow's INFO lines (its table
creation on a fresh store), the deprecation notices of pinned library versions, and DeepSpeed's accelerator
auto-detection warning on CPU machines.
A value the user set in the environment wins. Errors and swerl's own warnings still show.
Only programs call it (the CLI's ``main``, the demo flow's ``main``), once at start; a library function never
changes process-wide settings.
"""

from __future__ import annotations

import logging
import os
import warnings

_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "TOKENIZERS_PARALLELISM": "false",
}


class _AcceleratorNotice(logging.Filter):
    """Drops DeepSpeed's "Setting accelerator to CPU …" / "Setting ds_accelerator to …" lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Setting accelerator to", "Setting ds_accelerator to"))


def quiet_libraries() -> None:
    """Silence third-party progress bars, notices and deprecation warnings for the rest of this process."""
    for name, value in _ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    # DeepSpeed re-levels its logger when it loads; a filter on the same logger object survives that.
    logging.getLogger("DeepSpeed").addFilter(_AcceleratorNotice())
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"^(?!swerl_core)")
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
