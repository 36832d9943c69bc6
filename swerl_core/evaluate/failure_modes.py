"""Why answers fail: the failure modes of one evaluation, overall, per repository and per size bucket. Pure.

Each sample is sorted into outcomes (rates over samples; a sample may count in more than one, e.g. a
truncated answer is usually also a format error):

- ``format.<reason>``: the answer breaks the format — ``missing_tag``, ``duplicate_tag``,
  ``empty_thought``, ``no_block``, ``unwritable_block`` (from the reward's reason for −1);
- ``apply.search_not_found`` and ``apply.search_ambiguous``: a SEARCH block is not in the file, or is in
  it more than once (the edit then rewrites every occurrence, which is rarely what was meant);
- ``noop``: a SEARCH block equal to its REPLACE, or edits whose net change is empty;
- ``wrong_file``: the answer edits a file the oracle patch does not touch;
- ``truncated``: the answer used the whole ``max_new_tokens`` budget;
- ``exact_match``: the predicted change equals the oracle's.

Size buckets split instances by the number of changed lines in the oracle patch. These rates are what
:func:`swerl_core.evaluate.results.log_to_mlflow` records as ``failure.*`` metrics at the checkpoint's
training step, so curves across checkpoints show where a run went wrong.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from swerl_core.errors import FormatError
from swerl_core.evaluate.instances import EvalInstance
from swerl_core.evaluate.metrics import EXACT, SampleResult
from swerl_core.reward import extract_solution, file_changes
from swerl_core.runs import checkpoint_step
from swerl_core.search_replace import parse_edits

OUTCOMES = (
    "format.missing_tag",
    "format.duplicate_tag",
    "format.empty_thought",
    "format.no_block",
    "format.unwritable_block",
    "apply.search_not_found",
    "apply.search_ambiguous",
    "noop",
    "wrong_file",
    "truncated",
    "exact_match",
)
SIZE_BUCKETS = ((10, "small"), (50, "medium"))  # oracle changed lines ≤ bound; above the last: "large"
BREAKDOWN = ("format", "apply", "noop", "wrong_file", "exact_match")  # grouped outcomes per repo and size


def error_outcome(error: str) -> str:
    """The outcome name of a reward error message (the reason of a −1)."""
    if "appears 0 times" in error:
        return "format.missing_tag"
    if "appears" in error and "times" in error:
        return "format.duplicate_tag"
    if "thought is empty" in error:
        return "format.empty_thought"
    if "no SEARCH/REPLACE block" in error:
        return "format.no_block"
    if "search block not found" in error:
        return "apply.search_not_found"
    if "identical" in error:
        return "noop"
    return "format.unwritable_block"


def sample_outcomes(result: SampleResult, instance: EvalInstance, max_new_tokens: int) -> set[str]:
    """Every outcome of one scored sample (see the module docstring)."""
    outcomes: set[str] = set()
    if result.tokens >= max_new_tokens:
        outcomes.add("truncated")
    if result.error is not None:
        outcomes.add(error_outcome(result.error))
        return outcomes
    if result.reward >= EXACT:
        outcomes.add("exact_match")
    try:
        edits = parse_edits(extract_solution(result.output))
    except FormatError:
        edits = {}
    for path, file_edits in edits.items():
        content = "\n" + instance.code_context.get(path, "")
        if any(content.count("\n" + e.search) > 1 for e in file_edits):
            outcomes.add("apply.search_ambiguous")
        if path not in instance.oracle_new_content:
            outcomes.add("wrong_file")
    if result.applied and not result.model_patch:
        outcomes.add("noop")
    return outcomes


def size_bucket(instance: EvalInstance) -> str:
    """``small``, ``medium`` or ``large`` by the changed lines of the oracle patch."""
    changes = file_changes(instance.code_context, instance.oracle_new_content)
    changed = sum(1 for patch in changes.values() for line in patch.splitlines() if line.startswith(("+", "-")))
    return next((name for bound, name in SIZE_BUCKETS if changed <= bound), "large")


def failure_rates(
    results: Sequence[SampleResult], instances: Sequence[EvalInstance], max_new_tokens: int
) -> dict[str, float]:
    """``failure.<outcome>`` rates overall, ``failure.repo.<repo>.<group>`` and ``failure.size.<bucket>.<group>``."""
    by_id = {i.instance_id: i for i in instances}
    buckets = {i.instance_id: size_bucket(i) for i in instances}
    overall: dict[str, int] = defaultdict(int)
    groups: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for result in results:
        outcomes = sample_outcomes(result, by_id[result.instance_id], max_new_tokens)
        for outcome in outcomes:
            overall[outcome] += 1
        grouped = {o.split(".")[0] for o in outcomes}
        for key in (f"repo.{result.repo}", f"size.{buckets[result.instance_id]}"):
            groups[key]["n"] += 1
            for group in grouped & set(BREAKDOWN):
                groups[key][group] += 1
    n = max(len(results), 1)
    rates = {f"failure.{o}": overall[o] / n for o in OUTCOMES}
    rates["failure.format"] = sum(v for k, v in overall.items() if k.startswith("format.")) / n
    for key, counts in sorted(groups.items()):
        rates[f"failure.{key}.samples"] = float(counts["n"])
        rates.update({f"failure.{key}.{g}": counts[g] / counts["n"] for g in BREAKDOWN})
    return rates


def evaluation_step(model_dir: Path) -> int:
    """The training step of the checkpoint in ``model_dir`` (``checkpoint-N``, its ``trainer_state.json``, or the
    newest ``checkpoint-N`` beside a ``final/``); 0 when unknown."""
    step = checkpoint_step(model_dir)
    if step is not None:
        return step
    try:
        return int(json.loads((model_dir / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    siblings = [checkpoint_step(p) for p in model_dir.parent.glob("checkpoint-*")] if model_dir.name == "final" else []
    return max((s for s in siblings if s is not None), default=0)


def as_metrics(rates: Mapping[str, float]) -> dict[str, float]:
    """``rates`` with names MLflow accepts (a repository's ``/`` stays; anything else odd becomes ``_``)."""
    return {"".join(c if c.isalnum() or c in "._-/ " else "_" for c in k): float(v) for k, v in rates.items()}
