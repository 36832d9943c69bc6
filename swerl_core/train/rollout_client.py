"""GRPO's side of a rollout server (``grpo.vllm_mode: server``): TRL's client with deadlines, and the weight sync.

TRL 1.16's client waits forever on a server that hangs, retries a dead one for a minute, and fails on a garbled
answer deep inside the trainer with a ``KeyError``. Here every exchange has a deadline
(``grpo.vllm_request_timeout_s``) and every failure becomes one :class:`RolloutServerError` naming the server; the
trainer adds the step (:mod:`.stages`). The run stops there, its MLflow run is closed FAILED, and ``--resume``
continues from the last checkpoint.

Weight sync is TRL's NCCL broadcast (``grpo.vllm_weight_sync: nccl``), or the directory sync of
:mod:`swerl_core.weight_sync`: the trainer writes version N (its global step) under a directory the server also
mounts, asks the server to load it, and goes on only when every worker answers with N and this write's nonce.
TRL's classes are subclassed, so TRL is imported when the classes are first built, not at import time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from swerl_core.train.config import WeightSync
from swerl_core.train.errors import TrainError
from swerl_core.weight_sync import WeightsVersion, prune_weights, write_weights

ROLLOUT_WEIGHTS_DIR = "rollout-weights"  # directory sync: the run folder's default place for weights versions
HEALTH_PROBE_S = 5.0  # one /health request while waiting for the server to come up
VLLM_GROUP_PORT = 51216  # TRL GRPOConfig.vllm_group_port: NCCL sync's weight-update group, on the trainer's rank 0


class RolloutServerError(TrainError):
    """The rollout server died, hung past its deadline, or answered something that is not a valid answer."""

    def __init__(self, server: str, reason: str, step: int | None = None) -> None:
        at = f" at step {step}" if step is not None else ""
        super().__init__(f"rollout server {server} {reason}{at}")
        self.server, self.reason, self.step = server, reason, step

    def at_step(self, step: int) -> RolloutServerError:
        """The same failure, saying which training step it stopped."""
        return RolloutServerError(self.server, self.reason, step)


@dataclass(frozen=True)
class ServerRollouts:
    """How a GRPO run reaches its rollout server: the URL, the deadlines and the weight sync."""

    url: str
    weight_sync: WeightSync
    weights_dir: Path  # directory sync: where versions are written (the server's --weights-dir or inside it)
    request_timeout_s: float  # one exchange: a generation batch, a weight sync
    connect_timeout_s: float  # waiting for the server to come up at the start


@contextmanager
def server_generation(rollouts: ServerRollouts) -> Iterator[None]:
    """While open, TRL's GRPO trainer builds its server-mode generation as swerl's (deadlines, directory sync).

    TRL builds its ``VLLMGeneration`` inside ``GRPOTrainer.__init__`` and, in server mode, opens NCCL right there;
    swapping the class for the construction is the one seam that lets a CPU trainer use a server at all.
    """
    import trl.trainer.grpo_trainer as grpo_module

    original = grpo_module.VLLMGeneration
    grpo_module.VLLMGeneration = _generation_class(rollouts)
    try:
        yield
    finally:
        grpo_module.VLLMGeneration = original


def connect(url: str, connect_timeout_s: float, request_timeout_s: float, group_port: int = VLLM_GROUP_PORT) -> Any:
    """A client of the rollout server at ``url``: TRL's ``VLLMClient`` with deadlines, once the server answers
    ``/health`` (waiting up to ``connect_timeout_s``)."""
    return _client_class()(url, group_port, connect_timeout_s, request_timeout_s)


def count_server_tokens(generation: Any, record: Callable[[float], None]) -> None:
    """Report the tokens of each generation request as the server returned them (main process only: it alone
    talks to the server, for every rank)."""
    client = getattr(generation, "vllm_client", None)
    if client is None:
        return
    generate = client.generate

    def counted(*args: Any, **kwargs: Any) -> Any:
        output = generate(*args, **kwargs)
        record(float(sum(len(ids) for ids in output["completion_ids"])))
        return output

    client.generate = counted


@cache
def _client_class() -> type:
    import requests
    from requests.adapters import HTTPAdapter
    from trl.generation.vllm_client import VLLMClient
    from urllib3.util.retry import Retry

    class DeadlineClient(VLLMClient):
        """TRL's client, where every request has a deadline and every failure is a :class:`RolloutServerError`."""

        def __init__(self, base_url: str, group_port: int, connection_timeout: float, request_timeout: float):
            self.request_timeout = request_timeout
            self.server = base_url
            self.serving: dict[str, Any] | None = None  # directory sync: the version this client last had loaded
            super().__init__(base_url=base_url, group_port=group_port, connection_timeout=connection_timeout)
            # A refused connection or a 502/503 is retried briefly; a read that timed out is not (a hung server
            # does not recover within a step, and waiting again would double the deadline).
            retry = Retry(
                total=3, connect=3, read=False, status=2, status_forcelist=[502, 503], backoff_factor=0.5,
                allowed_methods=["GET", "POST"], raise_on_status=False,
            )  # fmt: skip
            adapter = HTTPAdapter(max_retries=retry)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

        def check_server(self, total_timeout: float = 0.0, retry_interval: float = 2.0) -> None:
            deadline = time.monotonic() + total_timeout
            while True:
                try:
                    if requests.get(f"{self.server}/health", timeout=HEALTH_PROBE_S).status_code == 200:
                        return
                except requests.RequestException:
                    pass
                if time.monotonic() >= deadline:
                    raise RolloutServerError(
                        self.server, f"did not come up within {total_timeout:g} s (grpo.vllm_server_timeout_s)"
                    )
                time.sleep(retry_interval)

        def _get(self, url: str, **kwargs: Any) -> Any:
            return self._exchange("GET", url, **kwargs)

        def _post(self, url: str, **kwargs: Any) -> Any:
            return self._exchange("POST", url, **kwargs)

        def _exchange(self, method: str, url: str, **kwargs: Any) -> Any:
            path = url.removeprefix(self.server)
            kwargs.setdefault("timeout", self.request_timeout)
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.Timeout:
                raise RolloutServerError(
                    self.server,
                    f"did not answer {path} within {kwargs['timeout']:g} s (grpo.vllm_request_timeout_s)",
                ) from None
            except requests.RequestException as exc:
                raise RolloutServerError(self.server, f"cannot be reached for {path} ({_cause(exc)})") from None
            if response.status_code != 200:
                raise RolloutServerError(
                    self.server, f"answered {path} with HTTP {response.status_code}: {_excerpt(response.text)}"
                )
            try:
                return response.json()
            except ValueError:
                raise RolloutServerError(
                    self.server, f"answered {path} with something that is not JSON: {_excerpt(response.text)}"
                ) from None

        def generate(self, prompts: list[Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
            try:
                output = super().generate(prompts, *args, **kwargs)
            except RolloutServerError:
                raise
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                raise RolloutServerError(self.server, f"answered a generation request with garbage ({exc!r})") from None
            expected = len(prompts) * int(kwargs.get("n", 1))
            completions = output.get("completion_ids")
            if not isinstance(completions, list) or len(completions) != expected:
                got = len(completions) if isinstance(completions, list) else type(completions).__name__
                raise RolloutServerError(self.server, f"returned {got} completions for {expected} asked")
            if any(not isinstance(ids, list) or not all(isinstance(t, int) for t in ids) for ids in completions):
                raise RolloutServerError(self.server, "returned completions that are not lists of token ids")
            self._check_still_serving()
            return output

        def _check_still_serving(self) -> None:
            """Fail if the server no longer serves the version this client loaded: someone else (a second trainer on
            the same server) loaded theirs, so these completions may come from another policy. Only this client
            writes its nonce, so the version still served after a generation was served throughout it."""
            if self.serving is None:
                return  # NCCL sync, or no directory sync yet
            answer = self._post(f"{self.server}/collective_rpc", json={"method": "swerl_weights_version"})
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or not results or any(result != self.serving for result in results):
                why = (
                    "it was restarted and serves the weights it started with"
                    if isinstance(results, list) and None in results
                    else "another trainer loaded its weights: one server serves one run"
                )
                raise RolloutServerError(
                    self.server,
                    f"no longer serves this run's weights version {self.serving['version']} but "
                    f"{_excerpt(str(results))} ({why})",
                )

        def load_weights(self, written: WeightsVersion) -> None:
            """Ask every worker of the server to load ``written``; return when all serve it."""
            try:
                answer = self._post(
                    f"{self.server}/collective_rpc",
                    json={
                        "method": "swerl_load_weights",
                        "kwargs": {"path": str(written.path), "version": str(written.version)},
                    },
                )
            except RolloutServerError as exc:
                # vLLM writes <path> for every path in its error: say which version it was asked for, and where.
                raise RolloutServerError(
                    self.server,
                    f"{exc.reason}, loading weights version {written.version} from {written.path} (a server loads "
                    "only from inside its --weights-dir, at the same path as the trainer)",
                ) from None
            expected = {"version": written.version, "nonce": written.nonce}
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or not results or any(result != expected for result in results):
                raise RolloutServerError(
                    self.server, f"did not confirm weights version {written.version} ({_excerpt(str(answer))})"
                )
            self.serving = expected

    return DeadlineClient


def _generation_class(rollouts: ServerRollouts) -> type:
    from trl.generation.vllm_generation import VLLMGeneration

    class ServerGeneration(VLLMGeneration):
        """TRL's server-mode generation over swerl's client; weights synced by NCCL or through a directory."""

        step_of: Callable[[], int] = staticmethod(lambda: 0)  # the trainer's global step, set once it exists

        def _init_vllm(self) -> None:
            if not self.accelerator.is_main_process:
                return  # the main process generates for every rank
            self.vllm_client = connect(
                rollouts.url, rollouts.connect_timeout_s, rollouts.request_timeout_s, self.group_port
            )
            if rollouts.weight_sync == "nccl":
                self.vllm_client.init_communicator(device=self.accelerator.device)

        def sync_weights(self) -> None:
            if rollouts.weight_sync == "nccl":
                super().sync_weights()
                return
            # Every rank walks the parameters (under ZeRO-3 each gather is a collective); the main one writes.
            weights = self._iter_named_params()
            if not self.accelerator.is_main_process:
                for _ in weights:
                    pass
                return
            written = write_weights(rollouts.weights_dir, self.step_of(), weights)
            self.vllm_client.load_weights(written)
            prune_weights(rollouts.weights_dir, written)
            self.vllm_client.reset_prefix_cache()

    return ServerGeneration


def _cause(exc: Exception) -> str:
    text = str(exc)
    for cause in ("Connection refused", "Connection reset", "Remote end closed", "Name or service not known"):
        if cause.lower() in text.lower():
            return cause.lower()
    return type(exc).__name__


def _excerpt(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"
