"""The one exception of the ingest family, :class:`IngestError`, with a one-line user message.

Raised for a bad token, an unknown repository, a GitHub answer of the wrong shape, or a GitHub / git
failure a run cannot work around. It must never carry the token or a multi-line traceback text.
"""

from __future__ import annotations

from swerl_core.errors import SwerlError


class IngestError(SwerlError):
    """Ingest cannot go on (bad token, unknown repository, GitHub or git failing); one-line reason."""
