"""Argument types shared by the ``swerl`` verbs: each turns one flag's text into a value or a usage error."""

from __future__ import annotations

import argparse
from datetime import datetime

from swerl_core.config import parse_utc_datetime


def iso_datetime(text: str) -> datetime:
    """An ISO-8601 date or time (``2025-01-31``, ``…T12:00:00Z``); a time without a zone is UTC."""
    try:
        return parse_utc_datetime(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date like 2025-01-31, got {text!r}") from None
