"""Curate: raw pull requests in DuckDB → versioned, decontaminated SWE-RL snapshots (train + held-out).

The package owns the curation stages (pure functions over Polars frames: :mod:`.filters`, :mod:`.dedup`,
:mod:`.decontaminate`, :mod:`.split`), patch normalization (:mod:`.patches`), the search for relevant
unmodified files (:mod:`.bm25`, :mod:`.retrieval`), prompt sizing (:mod:`.tokens`), reading the store
(:mod:`.source`) and writing snapshots (:mod:`.snapshot`). The entry is :func:`run` (a
:class:`CurateRequest` in, a :class:`~.snapshot.Snapshot` out); the work happens in
:func:`.pipeline.curate`. It never imports Prefect and never talks to GitHub; git is only read (file
contents at a base commit). The last stage runs a repository's tests, in the execution sandbox, only where
``execution.environments`` declares how (:mod:`.executable`).

Its settings section is :class:`swerl_core.config.curate.CurateConfig` (shared: the settings never import a
stage). Importing this package is cheap: Polars and DuckDB load when :func:`run` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from swerl_core.config.checks import NAME_RULE, is_printable_name
from swerl_core.curate.errors import CurateError, EmptySnapshotError
from swerl_core.progress import ProgressCallback

if TYPE_CHECKING:
    from swerl_core.config import Settings
    from swerl_core.curate.snapshot import Snapshot


@dataclass(frozen=True)
class CurateRequest:
    """A snapshot to cut: a human ``name`` and, optionally, the held-out cut overriding ``curate.heldout_after``."""

    name: str = "snapshot"
    heldout_after: datetime | None = None

    def __post_init__(self) -> None:
        if not is_printable_name(self.name):
            raise CurateError(f"invalid snapshot name {str(self.name)[:80]!r}: expected {NAME_RULE}")


def run(settings: Settings, request: CurateRequest, progress: ProgressCallback | None = None) -> Snapshot:
    """Curate the store at ``settings.db_path`` into a snapshot under ``settings.snapshots_dir``.

    The store is read read-only and written once, its ``snapshots`` row at the end. Unchanged input and
    settings give the same snapshot id and write nothing (``Snapshot.created`` is False). Raises
    :class:`CurateError` (``EmptySnapshotError`` when nothing survives) with a one-line reason.
    """
    from swerl_core.curate.pipeline import curate
    from swerl_core.store import Store

    if not settings.db_path.is_file():  # never create an empty database just to find nothing in it
        raise CurateError(f"no database at {settings.db_path}: nothing has been ingested yet")
    store = Store.for_settings(settings)
    return curate(store, settings, name=request.name, heldout_after=request.heldout_after, progress=progress)


def __getattr__(name: str) -> Any:
    # The result type lives beside the snapshot writer (Polars, PyArrow); load it only when asked for.
    if name == "Snapshot":
        from swerl_core.curate.snapshot import Snapshot

        return Snapshot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CurateError", "CurateRequest", "EmptySnapshotError", "Snapshot", "run"]
