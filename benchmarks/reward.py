"""Reward speed on real patches: the pure-``difflib`` definition vs swerl's reward, in one run.

Corpus: every Python file that changed between two released versions of real packages (wheels
fetched with ``pip download`` into ``benchmarks/.cache``). Each changed file is one prompt whose
oracle is the real change; its rollouts are SEARCH/REPLACE answers derived from the real change and
from perturbed copies of it (a partial fix, a noisy fix, an over-eager fix, a wrong-place edit, a
malformed answer).

Two workloads, both scored by the baseline (pure-Python ``difflib``, one process, no cache) and by
``batch_rewards`` (C matcher, pair cache, every core), and every value compared (max abs diff must
be 0.0):
- distinct: each variant once — no repeated answers, so caching cannot help;
- grpo: groups of 16 rollouts per prompt sampled from the variants, as GRPO scores them.

Usage: ``python benchmarks/reward.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from difflib import SequenceMatcher
from pathlib import Path

from swerl_core.prompts import oracle_answer
from swerl_core.reward import (
    PYTHON,
    RewardItem,
    RewardResult,
    batch_rewards,
    normalized_patch,
    shutdown_pool,
)
from swerl_core.search_replace import Edit, derive_edits

PACKAGES = [("rich", "13.3.0", "14.0.0"), ("click", "8.0.4", "8.1.7"), ("requests", "2.25.1", "2.32.3")]
CACHE = Path(__file__).resolve().parent / ".cache"
GROUP_SIZE = 16
# Curation caps patch size (issue 4: patch lines <= limit); the same cap keeps the pure-difflib
# baseline, which is quadratic in patch length, to minutes.
MAX_PATCH_CHARS = 8000


def fetch_wheel(name: str, version: str) -> Path:
    """The wheel of ``name==version`` from the package index, downloaded once into the cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"{name}-{version}-*.whl"))
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-d",
                str(CACHE),
                f"{name}=={version}",
            ],
            check=True,
        )
        found = sorted(CACHE.glob(f"{name}-{version}-*.whl"))
    return found[0]


def changed_files(name: str, old_version: str, new_version: str) -> list[tuple[str, str, str]]:
    """(path, old content, new content) of each Python file that differs between two releases."""
    old, new = zipfile.ZipFile(fetch_wheel(name, old_version)), zipfile.ZipFile(fetch_wheel(name, new_version))
    common = sorted({n for n in old.namelist() if n.endswith(".py")} & set(new.namelist()))
    out = []
    for path in common:
        before = old.read(path).decode("utf-8", errors="replace")
        after = new.read(path).decode("utf-8", errors="replace")
        if before != after:
            out.append((path, before, after))
    return out


def variants(path: str, old: str, new: str, rng: random.Random) -> list[str]:
    """Model answers for one real change, from exact to malformed."""
    old_lines, new_lines = old.split("\n"), new.split("\n")
    opcodes = [
        op for op in SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes() if op[0] != "equal"
    ]
    kept = set(rng.sample(range(len(opcodes)), max(1, len(opcodes) // 2)))
    partial = list(old_lines)
    for index in sorted(kept, reverse=True):
        _, i1, i2, j1, j2 = opcodes[index]
        partial[i1:i2] = new_lines[j1:j2]
    noisy = [line[:-1] if line.strip() and rng.random() < 0.1 else line for line in new_lines]
    eager = list(new_lines)
    eager.insert(rng.randrange(len(eager) + 1), "# keep this in sync with the changelog")
    wrong = list(old_lines)
    wrong.insert(rng.randrange(len(wrong) + 1), "import logging")
    answers = []
    for thought, target in [
        ("Apply the fix.", new_lines),
        ("Fix the main part.", partial),
        ("Fix it quickly.", noisy),
        ("Fix and document.", eager),
        ("Add logging.", wrong),
    ]:
        edits = derive_edits(path, old, "\n".join(target))
        if edits:
            answers.append(oracle_answer(thought, edits))
    answers.append(oracle_answer("Guess.", [Edit(path, "this line is not in the file", "x")]))
    return answers


def build_workloads(quick: bool, max_patch_chars: int) -> tuple[list[RewardItem], list[RewardItem], int]:
    """(distinct items, GRPO-group items, number of prompts) from the real changes."""
    rng = random.Random(0)
    distinct: list[RewardItem] = []
    grpo: list[RewardItem] = []
    prompts = 0
    for name, old_version, new_version in PACKAGES[:1] if quick else PACKAGES:
        for path, old, new in changed_files(name, old_version, new_version):
            if len(normalized_patch(old, new)) > max_patch_chars:
                continue
            context, oracle = {path: old}, {path: new}
            items = [RewardItem(context, oracle, output=a) for a in variants(path, old, new, rng)]
            distinct.extend(items)
            grpo.extend(rng.choices(items, weights=[4, 3, 3, 2, 2, 2][: len(items)], k=GROUP_SIZE))
            prompts += 1
    return distinct, grpo, prompts


def timed(fn: Callable[[], list[RewardResult]]) -> tuple[float, list[RewardResult]]:
    """Wall seconds and result of ``fn()``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def compare(label: str, items: list[RewardItem]) -> float:
    """Time baseline and swerl on ``items``, check every value is identical, print and return the speed-up."""
    base_s, expected = timed(lambda: [item.score(engine=PYTHON) for item in items])
    shutdown_pool()  # cold workers and cold caches: the start-up cost is part of the measurement
    ours_s, got = timed(lambda: batch_rewards(items))
    max_diff = max(abs(a.reward - b.reward) for a, b in zip(expected, got, strict=True))
    errors = sum(a.error != b.error for a, b in zip(expected, got, strict=True))
    if max_diff != 0.0 or errors:
        raise SystemExit(f"{label}: values differ (max abs diff {max_diff}, {errors} different errors)")
    ratio = base_s / ours_s
    mean = sum(r.reward for r in got) / len(got)
    print(
        f"{label:9s} {len(items):5d} rollouts  baseline {base_s:7.2f} s  swerl {ours_s:6.2f} s  "
        f"speed-up {ratio:6.1f}x  max abs diff {max_diff}  mean reward {mean:+.4f}",
        flush=True,
    )
    return ratio


def main() -> None:
    """Run both workloads and print their speed-ups against the 20x target."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one package pair only")
    parser.add_argument("--max-patch-chars", type=int, default=MAX_PATCH_CHARS, help="skip larger real changes")
    args = parser.parse_args()
    distinct, grpo, prompts = build_workloads(args.quick, args.max_patch_chars)
    print(
        f"corpus: {prompts} real file changes (patches <= {args.max_patch_chars} chars), cores: {os.cpu_count()}",
        flush=True,
    )
    for label, items in (("distinct", distinct), ("grpo", grpo)):
        ratio = compare(label, items)
        print(f"{label}: target >= 20x {'met' if ratio >= 20 else 'NOT met'}", flush=True)


if __name__ == "__main__":
    main()
