"""Okapi BM25 (Robertson & Zaragoza 2009) between an issue and a repository's source files, in numpy.

Tokens are identifier parts: ``parse_rows`` and ``parseRows`` both give ``parse`` and ``rows``, so an
issue that names a function finds the file defining it. This module owns scoring only; it never
reads git or the store.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z][a-z0-9]*|[A-Z]+[0-9]*|[0-9]+")
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "is",
        "it",
        "be",
        "for",
        "on",
        "with",
        "as",
        "by",
        "at",
        "this",
        "that",
        "are",
        "was",
        "not",
        "no",
        "if",
        "else",
        "from",
        "def",
        "class",
        "return",
        "import",
        "self",
        "none",
        "true",
        "false",
    ]
)


def tokenize(text: str) -> list[str]:
    """Lower-cased identifier parts of ``text`` (camelCase and snake_case split), stop words and 1-letter parts out."""
    return [w for w in (m.lower() for m in _WORD.findall(text)) if len(w) > 1 and w not in _STOP]


class BM25:
    """A BM25 index over documents given as token counts; :meth:`scores` ranks them for a query."""

    def __init__(self, documents: Sequence[Counter[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.documents = documents
        self.k1, self.b = k1, b
        self.lengths = np.array([sum(d.values()) for d in documents], dtype=np.float64)
        self.mean_length = float(self.lengths.mean()) if len(documents) else 0.0

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for the query tokens (each distinct term counted once)."""
        n = len(self.documents)
        total: np.ndarray = np.zeros(n, dtype=np.float64)
        if not n:
            return total
        norm = self.k1 * (1.0 - self.b + self.b * self.lengths / (self.mean_length or 1.0))
        for term in set(query):
            tf = np.fromiter((d.get(term, 0) for d in self.documents), dtype=np.float64, count=n)
            df = int(np.count_nonzero(tf))
            if not df:
                continue
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            total += idf * tf * (self.k1 + 1.0) / (tf + norm)
        return total


def rank(query: str, documents: Sequence[Counter[str]]) -> list[int]:
    """Indexes of the documents with a positive score for ``query``, best first (ties by index)."""
    scores = BM25(documents).scores(tokenize(query))
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [int(i) for i in order if scores[i] > 0]
