"""A pytest plugin that swerl loads into a sandboxed test run (``PYTEST_PLUGINS=swerl_test_report``, this folder on
``PYTHONPATH``). It keeps only the tests whose node ids the JSON list in ``$SWERL_TEST_IDS`` holds (pytest is given
their files: an id pytest cannot parse or find would otherwise abort the whole run), and appends each test's outcome
under its exact node id, one JSON line per phase, to the file ``$SWERL_TEST_REPORT`` names, then one line with pytest's
exit status when the session finishes. It takes both paths out of the environment as it loads (before any conftest or
test module is imported), so the code under test does not find them there. It imports nothing but the standard
library: it runs inside the repository's own environment, beside whatever pytest it pins.
"""

from __future__ import annotations

import json
import os
from typing import Any

_REPORT = os.environ.pop("SWERL_TEST_REPORT", "")
_IDS = os.environ.pop("SWERL_TEST_IDS", "")


def _write(node_id: str, when: str, outcome: str) -> None:
    if _REPORT:
        with open(_REPORT, "a", encoding="utf-8") as report:
            report.write(json.dumps({"id": node_id, "when": when, "outcome": outcome}) + "\n")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Keep the tests asked for; the rest are deselected."""
    if not _IDS:
        return
    with open(_IDS, encoding="utf-8") as listed:
        wanted = set(json.load(listed))
    kept = [item for item in items if item.nodeid in wanted]
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in wanted])
    items[:] = kept


def pytest_runtest_logreport(report: Any) -> None:
    """Record one phase (setup, call, teardown) of one test."""
    outcome = str(report.outcome)
    if hasattr(report, "wasxfail"):  # an expected failure is not a pass, nor is an unexpected pass a failure
        outcome = "xfailed" if outcome == "skipped" else "xpassed"
    _write(str(report.nodeid), str(report.when), outcome)


def pytest_collectreport(report: Any) -> None:
    """Record a module or class that could not be collected (its tests never ran)."""
    if report.failed:
        _write(str(report.nodeid), "collect", "failed")


def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    """Record that the session ran to its end, with pytest's exit status."""
    _write("", "session", str(int(exitstatus)))
