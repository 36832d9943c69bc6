"""A small, realistic snapshot in the curate contract's format, for tests and the CPU learning benchmark.

Rows are one-bug fixes in a small Python library (``acme/toolkit``): each row's code file holds a few
short functions, one of them broken the way real issues describe (an inverted comparison, an
off-by-one range, a dropped guard…); the oracle is the fixed file. Held-out rows fix the same kinds
of bugs in other files, merged later. Everything is generated deterministically in-process.

This is fixture data, not curate: it writes only ``$SWERL_HOME/snapshots/<id>/`` and reads nothing. The toy
wiring check's snapshots, made of the learnable world's fixes, are :mod:`.toy`'s.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SAMPLE_SNAPSHOT_ID = "sample-toolkit-v1"
REPO = "acme/toolkit"


@dataclass(frozen=True)
class _Function:
    name: str
    source: str
    correct: str  # fragment of `source` that the bug replaces
    broken: str
    issue: str

    def text(self, buggy: bool) -> str:
        return self.source.replace(self.correct, self.broken) if buggy else self.source


_FUNCTIONS = (
    _Function(
        "add",
        'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n    return a + b\n',
        "return a + b",
        "return a - b",
        "add() subtracts instead of adding\n\n`add(2, 3)` returns `-1`, I expected `5`.",
    ),
    _Function(
        "clamp",
        "def clamp(value: float, lo: float, hi: float) -> float:\n"
        '    """Limit value to the range [lo, hi]."""\n    return max(lo, min(value, hi))\n',
        "min(value, hi)",
        "min(value, lo)",
        "clamp() ignores the upper bound\n\n`clamp(5, 0, 10)` returns `0` instead of `5`.",
    ),
    _Function(
        "slugify",
        'def slugify(title: str) -> str:\n    """Lower-case title and join its words with dashes."""\n'
        '    words = title.lower().split()\n    return "-".join(words).strip("-")\n',
        '.strip("-")',
        '.lstrip("-")',
        'slugify() keeps trailing dashes\n\n`slugify("Hello -")` returns `"hello--"`; '
        "no dash should be left at the end.",
    ),
    _Function(
        "count_words",
        'def count_words(text: str) -> int:\n    """Number of words in text."""\n    return len(text.split())\n',
        "text.split()",
        'text.split(" ")',
        'count_words() counts double spaces as words\n\n`count_words("a  b")` returns 3, it should be 2.',
    ),
    _Function(
        "is_adult",
        'def is_adult(age: int) -> bool:\n    """True from the 18th birthday on."""\n    return age >= 18\n',
        "age >= 18",
        "age > 18",
        "is_adult(18) is False\n\nSomeone who is exactly 18 is an adult, but `is_adult(18)` returns False.",
    ),
    _Function(
        "last_item",
        'def last_item(items: list) -> object:\n    """The last element of a non-empty list."""\n'
        "    return items[-1]\n",
        "items[-1]",
        "items[len(items)]",
        "last_item() raises IndexError\n\n`last_item([1, 2])` raises `IndexError: list index out of range`.",
    ),
    _Function(
        "average",
        "def average(values: list[float]) -> float:\n"
        '    """Arithmetic mean of a non-empty list."""\n    return sum(values) / len(values)\n',
        "sum(values) / len(values)",
        "sum(values) / (len(values) - 1)",
        "average() is too large\n\n`average([2, 4])` returns 6.0 instead of 3.0.",
    ),
    _Function(
        "factorial",
        'def factorial(n: int) -> int:\n    """n! for n >= 0."""\n    result = 1\n'
        "    for k in range(2, n + 1):\n        result *= k\n    return result\n",
        "range(2, n + 1)",
        "range(2, n)",
        "factorial() is off by one\n\n`factorial(3)` returns 2, it should return 6.",
    ),
    _Function(
        "percent",
        "def percent(part: float, whole: float) -> float:\n"
        '    """part as a percentage of whole."""\n    return 100 * part / whole\n',
        "100 * part",
        "10 * part",
        "percent() is ten times too small\n\n`percent(1, 4)` returns 2.5 instead of 25.0.",
    ),
    _Function(
        "first_word",
        'def first_word(text: str) -> str:\n    """The first word of text."""\n    return text.split()[0]\n',
        "split()[0]",
        "split()[-1]",
        'first_word() returns the last word\n\n`first_word("hello big world")` returns `"world"`.',
    ),
    _Function(
        "safe_div",
        'def safe_div(a: float, b: float) -> float:\n    """a / b, or 0.0 when b is zero."""\n'
        "    if b == 0:\n        return 0.0\n    return a / b\n",
        "    if b == 0:\n        return 0.0\n    return a / b",
        "    return a / b",
        "safe_div() crashes on zero\n\n`safe_div(1, 0)` raises ZeroDivisionError; the docstring promises 0.0.",
    ),
    _Function(
        "is_even",
        'def is_even(n: int) -> bool:\n    """True for even integers."""\n    return n % 2 == 0\n',
        "n % 2 == 0",
        "n % 2 == 1",
        "is_even() is inverted\n\n`is_even(4)` returns False and `is_even(3)` returns True.",
    ),
    _Function(
        "to_fahrenheit",
        "def to_fahrenheit(celsius: float) -> float:\n"
        '    """Convert degrees Celsius to Fahrenheit."""\n    return celsius * 9 / 5 + 32\n',
        "celsius * 9 / 5",
        "celsius * 5 / 9",
        "to_fahrenheit() gives wrong values\n\n`to_fahrenheit(100)` returns 87.55…, it should be 212.0.",
    ),
    _Function(
        "initials",
        'def initials(name: str) -> str:\n    """Upper-case initials of a full name."""\n'
        '    return "".join(word[0].upper() for word in name.split())\n',
        "word[0]",
        "word[-1]",
        'initials() uses the last letters\n\n`initials("Ada Lovelace")` returns `"AE"` instead of `"AL"`.',
    ),
)

_MODULES = ("core", "helpers", "numbers", "text", "misc", "ops", "calc", "strings")
_INIT_FILE = ("src/toolkit/__init__.py", '"""toolkit: small helpers."""\n\n__version__ = "1.4.0"\n')
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)  # the first fixture row's creation time; later rows follow by days


def sample_rows(
    n_train: int = 28, n_heldout: int = 7, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, heldout)`` rows in the snapshot contract's shape (held-out merged after every train row)."""
    rng = random.Random(seed)
    rows = [_row(index, rng) for index in range(n_train + n_heldout)]
    return rows[:n_train], rows[n_train:]


def sample_texts() -> list[str]:
    """Code and issue texts of the sample world (tokenizer training material for the tiny model)."""
    texts = [f.text(buggy) for f in _FUNCTIONS for buggy in (False, True)]
    return texts + [f.issue for f in _FUNCTIONS] + [_INIT_FILE[1]]


def write_sample_snapshot(
    home: Path, snapshot_id: str = SAMPLE_SNAPSHOT_ID, n_train: int = 28, n_heldout: int = 7, seed: int = 0
) -> Path:
    """Write ``train.parquet``, ``heldout.parquet`` and ``manifest.json`` into snapshot ``snapshot_id`` of ``home``."""
    train, heldout = sample_rows(n_train, n_heldout, seed)
    return write_snapshot_rows(Path(home), snapshot_id, train, heldout, REPO)


def _row(index: int, rng: random.Random) -> dict[str, Any]:
    target = _FUNCTIONS[index % len(_FUNCTIONS)]
    others = rng.sample([f for f in _FUNCTIONS if f is not target], 2)
    functions = [target, *others]
    rng.shuffle(functions)
    path = f"src/toolkit/{_MODULES[(index * 3 + index // len(_FUNCTIONS)) % len(_MODULES)]}.py"
    header = f'"""Helpers of toolkit: {", ".join(f.name for f in functions)}."""\n\n\n'
    before = header + "\n\n".join(f.text(f is target) for f in functions)
    after = header + "\n\n".join(f.text(False) for f in functions)
    context = [{"path": path, "content": before}]
    if index % 3 == 0:
        context.append({"path": _INIT_FILE[0], "content": _INIT_FILE[1]})
    pr_number, issue_number = 100 + 2 * index, 99 + 2 * index
    created = START + timedelta(days=index, hours=rng.randrange(8))
    return {
        "instance_id": f"acme__toolkit-{pr_number}",
        "repo": REPO,
        "pr_number": pr_number,
        "issue_numbers": [issue_number],
        "problem_statement": target.issue,
        "hints": "",
        "code_context": context,
        "oracle_new_content": [{"path": path, "content": after}],
        "oracle_patch": _git_diff(path, before, after),
        "test_patch": _git_diff(
            f"tests/test_{target.name}.py",
            "",
            f"from toolkit import {target.name}\n\n\ndef test_{target.name}():\n"
            f"    assert {target.name}  # regression test for #{issue_number}\n",
        ),
        "base_commit": hashlib.sha1(f"{REPO}@{index}".encode()).hexdigest(),
        "created_at": created,
        "merged_at": created + timedelta(hours=20),
        "languages": ["Python"],
    }


def _git_diff(path: str, old: str, new: str) -> str:
    source = f"a/{path}" if old else "/dev/null"
    body = difflib.unified_diff(old.splitlines(True), new.splitlines(True), source, f"b/{path}", n=3)
    return f"diff --git a/{path} b/{path}\n" + "".join(body)


def bugfix_rows(fixes: list[Any], repo: str, start: datetime) -> list[dict[str, Any]]:
    """Snapshot rows (curate's contract) of generated :class:`~swerl_core.demo.learnable.BugFix` es, a day apart."""
    rows = []
    for index, fix in enumerate(fixes):
        created = start + timedelta(days=index)
        rows.append({
            "instance_id": f"{repo.replace('/', '__')}-{index + 1}",
            "repo": repo,
            "pr_number": index + 1,
            "issue_numbers": [],
            "problem_statement": f"{fix.title}\n\n{fix.body}",
            "hints": "",
            "code_context": [{"path": fix.path, "content": fix.before}],
            "oracle_new_content": [{"path": fix.path, "content": fix.after}],
            "oracle_patch": _git_diff(fix.path, fix.before, fix.after),
            "test_patch": "",
            "base_commit": hashlib.sha1(f"{repo}@{index}".encode()).hexdigest(),
            "created_at": created,
            "merged_at": created + timedelta(hours=1),
            "languages": ["Python"],
        })  # fmt: skip
    return rows


def write_snapshot_rows(
    home: Path, snapshot_id: str, train: list[dict[str, Any]], heldout: list[dict[str, Any]], repo: str
) -> Path:
    """Write ``train`` and ``heldout`` rows (curate's row schema) as snapshot ``snapshot_id`` of ``home``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from swerl_core.config import Settings
    from swerl_core.snapshot_schema import ROW_SCHEMA
    from swerl_core.snapshots import file_sha256, snapshot_dir

    out = snapshot_dir(Settings(home=home).snapshots_dir, snapshot_id)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, rows in (("train", train), ("heldout", heldout)):
        pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), out / f"{split}.parquet")
        files[f"{split}.parquet"] = {"sha256": file_sha256(out / f"{split}.parquet"), "rows": len(rows)}
    manifest = {
        "id": snapshot_id,
        "train_rows": len(train),
        "heldout_rows": len(heldout),
        "files": files,
        "repos": [repo],
        "source": "swerl_core.demo.sample_snapshot (fixture, not curate)",
        "cutoff": heldout[0]["merged_at"].isoformat() if heldout else None,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out
