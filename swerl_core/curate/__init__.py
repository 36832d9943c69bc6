"""Curate: raw pull requests in DuckDB → versioned, decontaminated SWE-RL snapshots (train + held-out).

The package owns the curation stages (pure functions over Polars frames: :mod:`.filters`, :mod:`.dedup`,
:mod:`.decontaminate`, :mod:`.split`), the file classification (:mod:`.file_kinds`), patch
normalization (:mod:`.patches`), the search for relevant unmodified files (:mod:`.bm25`,
:mod:`.retrieval`), prompt sizing (:mod:`.tokens`), reading the store (:mod:`.source`) and writing
snapshots (:mod:`.snapshot`). The entry function is :func:`swerl_core.curate.pipeline.curate`.
It never imports Prefect and never talks to GitHub; git is only read (file contents at a base commit).

Importing this package is cheap: :mod:`swerl_core.config` composes :class:`.config.CurateConfig`.
"""

from __future__ import annotations

from swerl_core.errors import SwerlError


class CurateError(SwerlError):
    """Curation cannot produce a snapshot; the one-line message says why (empty result, bad benchmark file…)."""
