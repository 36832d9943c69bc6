"""``evaluate`` settings: the generation backend (transformers, a vLLM engine in the process, or an OpenAI-compatible
endpoint), sampling, batching and the endpoint's limits.

Composed into :class:`swerl_core.config.Settings` as ``settings.evaluate`` (env ``SWERL_EVALUATE__<KEY>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swerl_core.config.checks import DAY_S, SEED_MAX, require, require_integer, require_number

Backend = Literal["transformers", "vllm", "endpoint"]


@dataclass(frozen=True)
class EvaluateConfig:
    """How a checkpoint is evaluated: K samples per held-out instance (greedy when K = 1)."""

    backend: Backend = "transformers"
    samples: int = 1  # K rollouts per instance; K = 1 decodes greedily
    temperature: float = 0.8  # sampling temperature when samples > 1
    top_p: float = 0.95
    max_new_tokens: int = 1024
    batch_size: int = 8  # prompts per transformers generate() call
    limit: int = 0  # evaluate the first N held-out instances; 0 = all
    seed: int = 0
    endpoint_url: str = ""  # OpenAI-compatible base URL, e.g. http://rollout-0:8000/v1
    endpoint_model: str = ""  # model name the endpoint serves (default: the --model argument)
    concurrency: int = 8  # requests in flight to the endpoint
    timeout_s: float = 300.0  # per request (endpoint) or per generate() call (transformers)
    max_retries: int = 3  # endpoint retries on timeouts, connection errors, 429 and 5xx
    backoff_s: float = 1.0  # first retry wait; doubles each retry
    harness_workers: int = 4  # parallel containers of the SWE-bench harness
    # The evaluate flow first evaluates the models a run was trained from (base, SFT warm start), once per
    # protocol, so that each checkpoint's comparison plot shows base → SFT → GRPO on the same instances.
    lineage: bool = True
    # Run each answer to an executable held-out instance (validated at curation, its repository declaring an
    # environment) against its tests in the sandbox: the resolved rate and the reward's calibration.
    execute: bool = True

    def __post_init__(self) -> None:
        require_integer("evaluate.samples", self.samples, 1, 1000)
        require_number("evaluate.temperature", self.temperature, 0, 10, open_low=True)
        require_number("evaluate.top_p", self.top_p, 0, 1, open_low=True)
        require_integer("evaluate.max_new_tokens", self.max_new_tokens, 1, 1_000_000)
        require_integer("evaluate.batch_size", self.batch_size, 1, 100_000)
        require_integer("evaluate.limit", self.limit, 0, 1_000_000_000, note="0: all")
        require_integer("evaluate.seed", self.seed, 0, SEED_MAX)
        require_integer("evaluate.concurrency", self.concurrency, 1, 1024)
        require_number("evaluate.timeout_s", self.timeout_s, 0, DAY_S, open_low=True, unit="seconds")
        require_integer("evaluate.max_retries", self.max_retries, 0, 100)
        require_number("evaluate.backoff_s", self.backoff_s, 0, DAY_S, unit="seconds")
        require_integer("evaluate.harness_workers", self.harness_workers, 1, 1024)
        if self.backend == "endpoint":
            require(
                self.endpoint_url.startswith(("http://", "https://")),
                "evaluate.endpoint_url",
                "an http(s) URL of an OpenAI-compatible server when evaluate.backend is endpoint",
            )

    @property
    def greedy(self) -> bool:
        """True when one sample per instance is decoded greedily."""
        return self.samples == 1
