"""The snapshot row format of ``docs/data-contracts.md`` as an Arrow schema, in a module of its own.

:mod:`swerl_core.curate.snapshot` writes snapshots in it; the demo's sample snapshot
(:mod:`swerl_core.demo.sample_snapshot`) too, which is why it lives apart from the curate package: that package
imports Polars and DuckDB, and ``benchmarks/gpu_smoke.sh`` writes the sample snapshot on a GPU machine that has
neither (only PyArrow).
"""

from __future__ import annotations

import pyarrow as pa

_FILES = pa.list_(pa.struct([("path", pa.string()), ("content", pa.string())]))
ROW_SCHEMA = pa.schema(
    [
        ("instance_id", pa.string()),
        ("repo", pa.string()),
        ("pr_number", pa.int64()),
        ("issue_numbers", pa.list_(pa.int64())),
        ("problem_statement", pa.string()),
        ("hints", pa.string()),
        ("code_context", _FILES),
        ("oracle_new_content", _FILES),
        ("oracle_patch", pa.string()),
        ("test_patch", pa.string()),
        ("base_commit", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("merged_at", pa.timestamp("us", tz="UTC")),
        ("languages", pa.list_(pa.string())),
        ("execution", pa.string()),
        ("fail_to_pass", pa.list_(pa.string())),
        ("pass_to_pass", pa.list_(pa.string())),
    ]
)
"""The snapshot row format (docs/data-contracts.md)."""
EXECUTION_COLUMNS = ("execution", "fail_to_pass", "pass_to_pass")
"""The columns of stage 10 (validated instances); a snapshot written before it lacks them."""
NOT_VALIDATED = "not_validated"
"""The ``execution`` value of a row of a snapshot written before validation existed, or of a train row when curation
validated held-out rows only (``curate.validate: heldout``)."""
EXECUTABLE = "executable"
"""The ``execution`` value of a validated row: FAIL_TO_PASS holds at least one test (evaluation runs it)."""
