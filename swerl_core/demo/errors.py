"""The demo package's errors: a sample-world or fake-server problem, and a sample-world data file that is wrong."""

from __future__ import annotations

from swerl_core.errors import SwerlError


class DemoError(SwerlError):
    """A sample-world or fake-server problem, with a one-line message naming what is wrong."""


class SpecDataError(DemoError):
    """A sample-world data file does not match the shape of the spec it should describe."""
