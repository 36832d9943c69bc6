"""What ``make demo`` prints at the end, from what the retrain run published: the held-out reward of every stage
with its uncertainty, which checkpoint was registered, and the gate's paired decision.

Pure text from plain data (the rows of the run's table artifacts, the text of its markdown ones): the flows layer
reads the artifacts from Prefect, this module only lays them out, so the demo's narration can be tested without a
server. It never decides anything itself: the numbers and the verdict are the pipeline's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Rows = Sequence[Mapping[str, Any]]


def stage_table(evaluations: Rows, registered: str | None) -> list[str]:
    """One line per evaluated model (base, SFT, each GRPO checkpoint), the registered one marked."""
    if not evaluations:
        return ["  (no evaluation was published)"]
    samples = {str(row.get("samples per instance", "?")) for row in evaluations}
    instances = {str(row.get("held-out instances", "?")) for row in evaluations}
    executed = any(row.get("resolved rate", "-") != "-" for row in evaluations)
    lines = [
        f"held-out mean reward over {', '.join(sorted(instances))} pull requests, K = {', '.join(sorted(samples))} "
        "sampled answers each, 90 % interval (bootstrap over pull requests):",
        f"  {'stage':<6} {'model':<26} {'mean':>7}  {'90 % interval':<18} {'malformed':>9}  {'applies':>7}"
        + (f"  {'resolved':>8}  {'AUC':>5}" if executed else ""),
    ]
    mark = Path(registered).name if registered else None
    for row in evaluations:
        model = str(row.get("model", "?"))
        chosen = mark is not None and model == mark and str(row.get("stage")) not in ("base", "sft")
        lines.append(
            f"  {str(row.get('stage', '?')):<6} {model[:26]:<26} {float(row.get('mean reward', 0.0)):+7.3f}  "
            f"{str(row.get('90% interval', '-')):<18} {float(row.get('format-error rate', 0.0)):9.0%}  "
            f"{float(row.get('apply rate', 0.0)):7.0%}"
            + (
                f"  {_share(row.get('resolved rate')):>8}  {_number(row.get('reward AUC for resolved')):>5}"
                if executed
                else ""
            )  # fmt: skip
            + ("   <- registered (the best checkpoint)" if chosen else "")
        )
    if executed:
        counts = {str(row.get("executable instances", "-")) for row in evaluations} - {"-"}
        lines.append(
            f"  resolved: the share of sampled answers that pass their pull request's tests in the sandbox, over "
            f"{', '.join(sorted(counts)) or 'the'} executable held-out pull requests; AUC: how well the reward ranks "
            "resolved answers above the others (0.5 is chance, - when one class is missing)"
        )
    return lines


def _share(value: Any) -> str:
    return "-" if value in (None, "-") else f"{float(value):.0%}"


def _number(value: Any) -> str:
    return "-" if value in (None, "-") else f"{float(value):.2f}"


def gate_lines(gate_markdown: str | None, registration: Rows) -> list[str]:
    """The gate's decision in two lines: verdict and what it was judged against, then why."""
    if not registration:
        return ["gate: no version was registered"]
    row = registration[0]
    why = ""
    for line in (gate_markdown or "").splitlines():
        if line.startswith("Why: "):
            why = line.removeprefix("Why: ")
    return [
        f"gate: {row.get('gate')} against {row.get('against')} -> version v{row.get('version')}, aliases "
        f"{row.get('aliases')}",
        f"  why: {why}" if why else "  (the gate's reasoning is on the gate-decision artifact)",
    ]


def demo_summary(
    retrain: str,
    tables: Mapping[str, Rows],
    texts: Mapping[str, str],
    reward_curve: str | None,
    versions: Sequence[str],
    links: Sequence[str],
) -> str:
    """The demo's closing report: the retrain outcome, ingest and curation tables, GRPO's training reward, every
    stage's held-out reward with its interval, the gate decision, the registered versions and where to look."""
    lines = [f"retrain: {retrain}"]
    for key in ("ingest-summary", "curation-funnel"):
        if tables.get(key):
            lines += ["", f"{key}:", *("  " + ", ".join(f"{k}: {v}" for k, v in row.items()) for row in tables[key])]
    if reward_curve:
        lines += ["", reward_curve]
    registration = tables.get("retrain-registration", [])
    registered = str(registration[0].get("registered checkpoint")) if registration else None
    lines += ["", *stage_table(tables.get("held-out-evaluations", []), registered)]
    lines += ["", *gate_lines(texts.get("gate-decision"), registration)]
    lines += ["", "registered versions:", *("  " + v for v in versions), "", *links]
    return "\n".join(lines)


def version_lines(versions: Sequence[Any]) -> list[str]:
    """One line per registered version (rows of :func:`~swerl_core.registry.register.list_versions`)."""
    return [
        f"v{row.version}: aliases {', '.join(row.aliases) or '-'}; gate {row.verdict}"
        + (f" against {row.against}" if row.against else "")
        for row in versions
    ]


def ui_links(prefect_url: str, mlflow_url: str, run_id: object, model_name: str) -> list[str]:
    """Where to look next: the retrain run in the Prefect UI, the deployments, the registered model in MLflow."""
    return [
        f"Prefect UI, this retrain run and its subflows: {prefect_url}/runs/flow-run/{run_id}",
        f"Deployments and their next scheduled runs:    {prefect_url}/deployments",
        f"MLflow UI, the registered model:              {mlflow_url}/#/models/{model_name}",
    ]


class Narration:
    """The lines to print while a retrain run is watched: its state until a subflow starts, then each subflow once."""

    def __init__(self) -> None:
        self._state = ""
        self._seen: set[object] = set()

    def update(self, state: str, subflows: Sequence[tuple[object, str]]) -> list[str]:
        """Lines for the run now in ``state`` with ``subflows`` (id, name), oldest first; only what is new."""
        lines = []
        if state != self._state and not self._seen:
            lines.append(
                f"  retrain: {state}" + (" (waiting for the worker)" if state in ("Scheduled", "Pending") else "")
            )
        self._state = state
        for key, name in subflows:
            if key not in self._seen:
                self._seen.add(key)
                lines.append(f"  {name}: started")
        return lines
