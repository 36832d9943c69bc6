"""The induction warm-up's step (``swerl init-model --learnable``, the first minutes of ``make demo`` and of the
learnable-world tests): the repeat loss (:func:`swerl_core.demo.induction.repeat_loss`, the LM head on the repeated
span only) against the baseline, the loss of a label mask over the whole sequence.

Both train the same model on the same batches, interleaved in rounds on one torch thread (as a test worker runs),
from the same weights, with AdamW (the warm-up's gradient clipping and learning-rate schedule left out: the same for
both); the script prints seconds per step for each phase's batches, the ratio, and the largest difference between
the two losses on the first step, where both see the same weights (equal up to float rounding).

    .venv/bin/python benchmarks/warm_up.py [--steps 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from swerl_core.demo.induction import InductionSpec, repeat_batch, repeat_loss
from swerl_core.demo.learnable import learnable_texts
from swerl_core.demo.tiny_model import LEARNABLE_SPEC, init_tiny_model


def masked_loss(model: Any, ids: torch.Tensor, length: int) -> torch.Tensor:
    """The baseline: every position through the LM head, labels masked up to the repeat's second token."""
    labels = ids.clone()
    labels[:, : ids.size(1) - length + 1] = -100
    return model(input_ids=ids, labels=labels).loss


def batches(spec: InductionSpec, steps: int, max_gap: int, batch: int, vocab: int) -> list[tuple[torch.Tensor, int]]:
    """``steps`` batches drawn as the warm-up's phase draws them."""
    generator = torch.Generator().manual_seed(spec.seed)
    return [repeat_batch(generator, vocab, batch, max_gap) for _ in range(steps)]


def timed(model: Any, loss_fn: Any, drawn: list[tuple[torch.Tensor, int]]) -> tuple[float, list[float]]:
    """Seconds per training step (forward, backward, AdamW) over ``drawn``, and the losses."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    started = time.perf_counter()
    for ids, length in drawn:
        loss = loss_fn(model, ids, length)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return (time.perf_counter() - started) / len(drawn), losses


def main() -> None:
    """Print the step time of both losses per phase, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="steps per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from transformers import AutoModelForCausalLM

    spec = InductionSpec()
    with tempfile.TemporaryDirectory() as tmp:
        source = init_tiny_model(Path(tmp) / "model", LEARNABLE_SPEC, corpus=learnable_texts())
        vocab = AutoModelForCausalLM.from_pretrained(source).config.vocab_size
        phases = {
            "adjacent": batches(spec, args.steps, 0, spec.adjacent_batch, vocab),
            "gap": batches(spec, args.steps, spec.max_gap, spec.gap_batch, vocab),
        }
        print(f"LEARNABLE_SPEC, vocabulary {vocab}, {args.steps} steps per phase, {args.rounds} rounds, 1 thread")
        for phase, drawn in phases.items():
            seconds: dict[str, list[float]] = {"masked": [], "repeat": []}
            drift = 0.0
            for round_ in range(args.rounds):
                losses = {}
                order = [("masked", masked_loss), ("repeat", repeat_loss)]
                for name, loss_fn in order if round_ % 2 == 0 else order[::-1]:  # neither always runs first
                    model = AutoModelForCausalLM.from_pretrained(source)  # the same start for both
                    per_step, losses[name] = timed(model, loss_fn, drawn)
                    seconds[name].append(per_step)
                drift = max(drift, abs(losses["masked"][0] - losses["repeat"][0]))  # the same weights: step 1 only
            masked, repeat = statistics.median(seconds["masked"]), statistics.median(seconds["repeat"])
            print(
                f"{phase:9s} masked (baseline) {masked * 1000:6.1f} ms/step   repeat {repeat * 1000:6.1f} ms/step   "
                f"ratio {masked / repeat:.2f}×   first-step loss difference {drift:.1e}"
            )


if __name__ == "__main__":
    main()
