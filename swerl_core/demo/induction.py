"""Induction warm-up: the copying a pretrained LLM brings to SWE-RL, given to a tiny random model on a CPU.

A real base model already copies names, paths and lines from its context: pretraining grew induction
heads ("after A came B earlier, so B follows A again"). A random tiny model has none, and SFT on a few
thousand fixes never grows them: it learns the answer format and writes its favourite names instead of
the prompt's (docs/training.md, "the copying wall"). This warm-up stands in for that pretraining. The
model reads random token sequences that repeat, with the loss on the repeat only:

1. back to back (``adjacent_steps``): the induction heads form, after a plateau, as a sudden drop;
2. after a gap of up to ``max_gap`` random tokens (``gap_steps``): the heads must match content, not an
   offset, so that they reach across a prompt of several hundred tokens.

The result is saved with the model's tokenizer and an ``induction.json`` recording the spec, the
curriculum's version, the source model's fingerprint and the copy accuracy at several gaps;
:func:`warm_up_induction` reuses an output whose record matches instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swerl_core.demo.errors import DemoError
from swerl_core.locks import LockFolder
from swerl_core.progress import ProgressCallback, ProgressReporter

RECORD = "induction.json"
CURRICULUM_VERSION = 2  # bump when _train_phase changes what it trains on: older outputs are then retrained
FIRST_TOKEN = 6  # ids below are the special tokens of the tiny tokenizer (BOS, EOS, headers, pad)
WARM_UP_WAIT_S = 3600.0  # a second caller waits for the first's warm-up (minutes on 2 cores), not forever
PROBE_GAPS = (0, 100, 200)  # a learnable-world answer copies lines from up to ~170 tokens back


@dataclass(frozen=True)
class InductionSpec:
    """The warm-up curriculum (defaults: measured on ``LEARNABLE_SPEC``, the learnable world's model)."""

    adjacent_steps: int = 800
    adjacent_batch: int = 32
    gap_steps: int = 400
    gap_batch: int = 16
    max_gap: int = 150
    learning_rate: float = 2e-3
    warmup_steps: int = 50  # linear learning-rate warm-up at the start of each phase
    seed: int = 0


@dataclass(frozen=True)
class InductionResult:
    """A warmed-up model: where it is, how well it copies, and whether this call trained it."""

    model_dir: Path
    copy_accuracy: Mapping[int, float]  # gap in tokens → next-token accuracy on the repeated span
    seconds: float
    reused: bool


def warm_up_induction(
    source: Path, out_dir: Path, spec: InductionSpec = InductionSpec(), progress: ProgressCallback | None = None
) -> InductionResult:
    """Train a copy of the model in ``source`` to copy from its context (see the module docstring) into ``out_dir``.

    Raises :class:`~swerl_core.demo.errors.DemoError` when ``out_dir`` is ``source``, a file, or a folder that
    holds files but no model (it is replaced whole). Two calls on one
    ``out_dir`` take turns (the second then reuses the first's result), through a lock in ``locks/`` beside
    ``out_dir`` (:mod:`swerl_core.locks`; the folder that receives ``out_dir`` is one the caller can write),
    waiting at most :data:`WARM_UP_WAIT_S`.
    """
    source, out_dir = Path(source), Path(out_dir)
    if out_dir.resolve() == source.resolve():
        raise DemoError(f"induction warm-up: the output {out_dir} is the source model; name another folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"induction warm-up: {out_dir} is a file, not a folder for the warmed-up model")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "config.json").is_file():
        # The swap below replaces out_dir whole: never a folder of something else (a home, a models folder).
        raise DemoError(f"induction warm-up: {out_dir} holds files but no model; name a new or empty folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with LockFolder.beside(out_dir).for_path("warm-up", out_dir).hold(WARM_UP_WAIT_S):
        return _warm_up(source, out_dir, spec, ProgressReporter("train", progress))


def _warm_up(source: Path, out_dir: Path, spec: InductionSpec, say: ProgressReporter) -> InductionResult:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    record: dict[str, Any] = {
        "version": CURRICULUM_VERSION,
        "spec": asdict(spec),
        "source": source_fingerprint(source),
    }
    reused = _reusable(out_dir, record)
    if reused is not None:
        say(f"induction warm-up: reusing {out_dir} (same source model and curriculum)")
        return InductionResult(out_dir, reused, 0.0, reused=True)

    started = time.perf_counter()
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_pretrained(source)
    generator = torch.Generator().manual_seed(spec.seed)
    _train_phase(model, spec, "adjacent", spec.adjacent_steps, spec.adjacent_batch, 0, generator, say)
    _train_phase(model, spec, "gap", spec.gap_steps, spec.gap_batch, spec.max_gap, generator, say)
    accuracy = {gap: copy_accuracy(model, gap) for gap in PROBE_GAPS}
    say(f"induction warm-up: copy accuracy {copying(accuracy)}")

    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    model.save_pretrained(staging)
    AutoTokenizer.from_pretrained(source).save_pretrained(staging)
    record["copy_accuracy"] = {str(g): a for g, a in accuracy.items()}
    (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    # Swap by renames only: a kill leaves the old model or the new one whole (between the two renames, as
    # a hidden folder beside out_dir, and the next call trains again), never a record with half its weights.
    retired = out_dir.with_name(f".{out_dir.name}.old-{staging.name.rsplit('.', 1)[-1]}")
    if out_dir.exists():
        out_dir.rename(retired)
    staging.rename(out_dir)
    shutil.rmtree(retired, ignore_errors=True)
    return InductionResult(out_dir, accuracy, time.perf_counter() - started, reused=False)


def copying(accuracy: Mapping[int, float]) -> str:
    """Copy accuracy by gap in words: ``0.88 back to back, 0.84 across 100 tokens, …``."""
    return ", ".join(f"{a:.2f} " + (f"across {g} tokens" if g else "back to back") for g, a in accuracy.items())


def copy_accuracy(model: Any, gap: int, rows: int = 32, length: int = 20, seed: int = 1) -> float:
    """Greedy next-token accuracy on the second copy of ``length`` random tokens repeated after ``gap`` others."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    span = torch.randint(FIRST_TOKEN, vocab, (rows, length), generator=generator)
    noise = torch.randint(FIRST_TOKEN, vocab, (rows, gap), generator=generator)
    ids = torch.cat([span, noise, span], 1)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predicted = model(ids).logits[:, length + gap : -1].argmax(-1)
    model.train(was_training)
    return float((predicted == ids[:, length + gap + 1 :]).float().mean())


def repeat_batch(generator: Any, vocab: int, batch: int, max_gap: int) -> tuple[Any, int]:
    """One warm-up batch drawn from ``generator``: ``batch`` rows that end on a span of random tokens repeated from
    earlier in the row, after ``lead`` random tokens and a gap of up to ``max_gap`` others (none when 0, and then no
    lead); returns the token ids and the span's length."""
    import torch

    length = int(torch.randint(8, 25 if max_gap else 33, (1,), generator=generator))
    gap = int(torch.randint(0, max_gap + 1, (1,), generator=generator))
    lead = int(torch.randint(0, 41, (1,), generator=generator)) if max_gap else 0
    span = torch.randint(FIRST_TOKEN, vocab, (batch, length), generator=generator)
    ids = torch.cat([torch.randint(FIRST_TOKEN, vocab, (batch, lead + length + gap), generator=generator), span], 1)
    ids[:, lead : lead + length] = span
    return ids, length


def repeat_loss(model: Any, ids: Any, length: int) -> Any:
    """Mean next-token loss on the last ``length`` tokens of ``ids`` (the repeated span) from their second token.

    The loss a label mask of everything before the span gives, with the LM head run on the span's positions only
    (``logits_to_keep``): the head over the rest of each row is work whose loss is masked away
    (``benchmarks/warm_up.py``: steps 1.06× faster on the adjacent phase, 1.30× on the gap phase's longer rows).
    Raises :class:`ValueError` for a span shorter than 2 tokens (nothing to predict) or longer than the rows.
    """
    import torch

    if not 2 <= length <= ids.size(1):
        raise ValueError(f"repeat_loss: a span of {length} tokens in rows of {ids.size(1)}; it needs 2 to the row")
    logits = model(input_ids=ids, logits_to_keep=length).logits[:, :-1]
    targets = ids[:, -(length - 1) :]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))


def source_fingerprint(model_dir: Path) -> str:
    """SHA-256 over the model's config, weights and tokenizer files: which model a warm-up started from."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(model_dir).iterdir() if p.is_file() and p.name != RECORD):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def _reusable(out_dir: Path, record: dict[str, Any]) -> dict[int, float] | None:
    try:
        found = json.loads((out_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    weights = any(out_dir.glob("*.safetensors")) or any(out_dir.glob("*.bin"))
    if {k: found.get(k) for k in record} != record or not (out_dir / "config.json").is_file() or not weights:
        return None
    return {int(g): float(a) for g, a in found.get("copy_accuracy", {}).items()}


def _train_phase(
    model: Any,
    spec: InductionSpec,
    phase: str,
    steps: int,
    batch: int,
    max_gap: int,
    generator: Any,
    say: ProgressReporter,
) -> None:
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / spec.warmup_steps))
    model.train()
    for step in range(1, steps + 1):
        ids, length = repeat_batch(generator, model.config.vocab_size, batch, max_gap)
        loss = repeat_loss(model, ids, length)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step % 100 == 0 or step == steps:
            say(f"induction warm-up ({phase}): step {step}/{steps}, loss {loss.item():.3f}", step, steps)
