"""Evaluation throughput on CPU with the tiny model: batch size 1 vs 8, and where the time goes.

Workload: the held-out rows of the sample snapshot (``swerl_core.demo.sample_snapshot``), greedy
(K = 1), a fixed budget of new tokens, the tiny model of ``swerl init-model --tiny`` (random weights, so
almost every answer is a format error and the reward is cheap — the reward share printed here is a
lower bound; on a trained model the SequenceMatcher work grows with answer length). Prints instances/s
per batch size, the speed-up of batch 8 over batch 1, and the share of time in generation vs reward.
The speed-up is printed only when both batch sizes produced the same greedy answer for every instance
(padded batches must not change what greedy decoding picks); otherwise the differing instances are named.

Usage: ``python benchmarks/evaluate.py [--instances 8] [--max-new-tokens 32]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from swerl_core.config.evaluate import EvaluateConfig  # noqa: E402
from swerl_core.demo.sample_snapshot import write_sample_snapshot  # noqa: E402
from swerl_core.demo.tiny_model import init_tiny_model  # noqa: E402
from swerl_core.evaluate.backends import TransformersBackend  # noqa: E402
from swerl_core.evaluate.instances import heldout_instances  # noqa: E402
from swerl_core.evaluate.metrics import summarize  # noqa: E402
from swerl_core.evaluate.rollout import rollout  # noqa: E402


def main() -> None:
    """Run both batch sizes on the same instances and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="swerl-bench-eval-"))
    write_sample_snapshot(home, "bench", n_train=1, n_heldout=args.instances)
    instances = heldout_instances(home / "snapshots", "bench")
    model_dir = init_tiny_model(home / "tiny")
    print(
        f"{len(instances)} held-out instances, greedy, {args.max_new_tokens} new tokens, tiny model, "
        f"{os.cpu_count()} CPUs"
    )
    rates = {}
    answers: dict[int, dict[tuple[str, int], str]] = {}
    for batch in (1, 8):
        cfg = dataclasses.replace(EvaluateConfig(), batch_size=batch, max_new_tokens=args.max_new_tokens)
        backend = TransformersBackend(model_dir, cfg)
        results, timings = rollout(instances, backend, samples=1, reward_workers=0)
        total = timings.generation_s + timings.reward_s
        rates[batch] = len(instances) / total
        answers[batch] = {(r.instance_id, r.sample): r.output for r in results}
        m = summarize(results, 1)
        print(
            f"batch {batch}: {rates[batch]:.3f} instances/s  (generation {timings.generation_s:.2f} s = "
            f"{100 * timings.generation_s / total:.1f} %, reward+apply {timings.reward_s:.3f} s = "
            f"{100 * timings.reward_s / total:.1f} %, {m.tokens_generated} tokens, "
            f"format errors {m.format_error_rate:.2f})"
        )
    differ = sorted(key for key in answers[1] if answers[8].get(key) != answers[1][key])
    if differ or answers[1].keys() != answers[8].keys():
        names = ", ".join(instance for instance, _ in differ[:5])
        raise SystemExit(
            f"batch 1 and batch 8 gave different greedy answers for {len(differ)} instances ({names}); no ratio"
        )
    print(f"same work: batch 1 and batch 8 gave the same greedy answer for all {len(answers[1])} instances")
    print(f"batch 8 vs batch 1: {rates[8] / rates[1]:.2f}x instances/s")


if __name__ == "__main__":
    main()
