"""The errors of curation: :class:`CurateError`, and :class:`EmptySnapshotError` carrying the funnel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from swerl_core.errors import SwerlError

if TYPE_CHECKING:
    from swerl_core.curate.funnel import StageCount


class CurateError(SwerlError):
    """Curation cannot produce a snapshot; the one-line message says why (empty result, bad benchmark file…)."""


class EmptySnapshotError(CurateError):
    """No pull request survived curation; ``funnel`` says where they went."""

    def __init__(self, message: str, funnel: tuple[StageCount, ...]) -> None:
        super().__init__(message)
        self.funnel = funnel
