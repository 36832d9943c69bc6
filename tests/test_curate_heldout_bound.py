"""The held-out split tied to the base model's training cutoff: the later bound applies, the manifest record names
it, and a held-out row that is not newer than the cutoff and every training row is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from swerl_core.curate import CurateError
from swerl_core.curate.split import heldout_bound, heldout_bound_record, heldout_mask

MARCH, JUNE = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)


def _frame(*months: int) -> pl.DataFrame:
    return pl.DataFrame({"merged_at": [datetime(2025, m, 15, tzinfo=UTC) for m in months]})


def test_the_later_of_the_split_date_and_the_base_model_cutoff_applies() -> None:
    assert heldout_bound(MARCH, JUNE) == (JUNE, "base_model_cutoff")
    assert heldout_bound(JUNE, MARCH) == (JUNE, "heldout_after")
    assert heldout_bound(None, MARCH) == (MARCH, "base_model_cutoff")
    assert heldout_bound(None, None) == (None, "none")


def test_rows_the_base_model_may_have_seen_leave_the_heldout_split() -> None:
    frame = _frame(2, 4, 7)
    assert heldout_mask(frame, heldout_bound(MARCH, None)[0]).to_list() == [False, True, True]
    assert heldout_mask(frame, heldout_bound(MARCH, JUNE)[0]).to_list() == [False, False, True]


def test_the_manifest_record_names_the_bound_and_the_newest_training_row() -> None:
    record = heldout_bound_record(_frame(2, 4), _frame(7), MARCH, JUNE)
    assert record["applied"] == "base_model_cutoff" and record["at"] == JUNE.isoformat()
    assert record["heldout_after"] == MARCH.isoformat() and record["base_model_cutoff"] == JUNE.isoformat()
    assert record["newest_train_merged_at"].startswith("2025-04-15")
    assert record["oldest_heldout_merged_at"].startswith("2025-07-15")


def test_a_heldout_row_not_newer_than_every_training_row_is_refused() -> None:
    with pytest.raises(CurateError, match="not newer than the cut-off"):
        heldout_bound_record(_frame(2, 8), _frame(7), MARCH, None)
    with pytest.raises(CurateError, match="not newer than the cut-off"):
        heldout_bound_record(_frame(2), _frame(5), MARCH, JUNE)
