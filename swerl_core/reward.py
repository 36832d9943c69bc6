"""The SWE-RL reward (paper §2.2): −1 for a malformed answer, else patch similarity to the oracle.

Values equal the paper's definition exactly; speed comes only from *how* they are computed:
``cydifflib`` (a C port of :class:`difflib.SequenceMatcher` with identical ratios), a cache of
repeated (prediction, oracle) pairs, and :func:`batch_rewards`, which spreads a batch over every core.
Every function takes ``engine=``: :data:`FAST` (``cydifflib`` for both the line diff and the
similarity, plus the pair cache) by default, or :data:`PYTHON`, the paper's pure-``difflib`` definition,
so the two can run side by side (tests and ``benchmarks/reward.py`` check they agree to the bit).

This module never touches the network, the disk or a model.
"""

from __future__ import annotations

import atexit
import difflib
import hashlib
import multiprocessing
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import cydifflib
from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from swerl_core.diff_paths import unquoted_path
from swerl_core.errors import FormatError
from swerl_core.search_replace import apply_edits, parse_edits

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SOLUTION_OPEN, SOLUTION_CLOSE = "<solution>", "</solution>"

Ratio = Callable[[str, str], float]


@dataclass(frozen=True)
class FileSimilarity:
    """How close the predicted change of one file is to the oracle change of that file."""

    path: str
    similarity: float
    pred_change: str
    oracle_change: str


@dataclass(frozen=True)
class RewardResult:
    """A reward in [−1, 1]; ``error`` is the short reason when the answer is malformed (reward −1)."""

    reward: float
    error: str | None = None
    files: tuple[FileSimilarity, ...] = field(default=(), repr=False)

    @property
    def is_format_error(self) -> bool:
        """True when the answer broke the format (the reward is then −1)."""
        return self.error is not None


def difflib_ratio(pred: str, oracle: str) -> float:
    """The paper's similarity: pure-Python ``difflib.SequenceMatcher(autojunk=False).ratio()``."""
    return difflib.SequenceMatcher(None, pred, oracle, autojunk=False).ratio()


# Keyed by a digest of the pair, not the strings: rollouts are long, and a cache holding every patch
# of a run in each worker would grow without bound in bytes. 16-byte BLAKE2b makes a collision (and so
# a wrong reward) practically impossible.
_RATIO_CACHE: OrderedDict[bytes, float] = OrderedDict()
RATIO_CACHE_ENTRIES = 65536


def fast_ratio(pred: str, oracle: str) -> float:
    """The same value as :func:`difflib_ratio`, computed in C and cached per distinct pair (LRU)."""
    key = _pair_digest(pred, oracle)
    cached = _RATIO_CACHE.get(key)
    if cached is not None:
        _RATIO_CACHE.move_to_end(key)
        return cached
    value = cydifflib.SequenceMatcher(None, pred, oracle, autojunk=False).ratio()
    _RATIO_CACHE[key] = value
    if len(_RATIO_CACHE) > RATIO_CACHE_ENTRIES:
        _RATIO_CACHE.popitem(last=False)
    return value


def _pair_digest(pred: str, oracle: str) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    first = pred.encode("utf-8", "surrogatepass")
    digest.update(len(first).to_bytes(8, "little"))
    digest.update(first)
    digest.update(oracle.encode("utf-8", "surrogatepass"))
    return digest.digest()


@dataclass(frozen=True)
class Engine:
    """The two difflib algorithms the reward runs: the line diff of a file and the similarity of two changes."""

    ratio: Ratio
    unified_diff: Callable[..., Iterator[str]]


PYTHON = Engine(difflib_ratio, difflib.unified_diff)
"""The paper's definition, pure-Python ``difflib`` (slow; the reference for tests and benchmarks)."""
FAST = Engine(fast_ratio, cydifflib.unified_diff)
"""The same values from ``cydifflib`` (C) with the pair cache: what swerl uses."""


def normalized_patch(old: str, new: str, engine: Engine = FAST) -> str:
    """The unified diff of two file versions (3 context lines) without its two header lines; ``""`` if equal."""
    diff = engine.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=3)
    return "\n".join(list(diff)[2:])


def file_changes(
    code_context: Mapping[str, str], new_content: Mapping[str, str], engine: Engine = FAST
) -> dict[str, str]:
    """Normalized patch per path of ``new_content``, leaving out files whose patch is empty."""
    changes: dict[str, str] = {}
    for path, content in new_content.items():
        patch = normalized_patch(code_context.get(path, ""), content, engine)
        if patch:
            changes[path] = patch
    return changes


def change_similarity(
    pred_changes: Mapping[str, str], oracle_changes: Mapping[str, str], engine: Engine = FAST
) -> RewardResult:
    """Mean per-file similarity over every file either side changed; 1.0 when neither changed anything.

    A file changed on one side only scores 0. Files are visited in sorted order so the float sum
    (and so the reward) is the same in every process.
    """
    paths = sorted(set(pred_changes) | set(oracle_changes))
    if not paths:
        return RewardResult(1.0)
    files = []
    for path in paths:
        pred, oracle = pred_changes.get(path, ""), oracle_changes.get(path, "")
        score = engine.ratio(pred, oracle) if pred and oracle else 0.0
        files.append(FileSimilarity(path, score, pred, oracle))
    return RewardResult(sum(f.similarity for f in files) / len(files), files=tuple(files))


def extract_solution(output: str) -> str:
    """The stripped answer between the solution tags; raises :class:`FormatError` on a malformed output."""
    for tag in (THINK_OPEN, THINK_CLOSE, SOLUTION_OPEN, SOLUTION_CLOSE):
        count = output.count(tag)
        if count != 1:
            raise FormatError(f"{tag} appears {count} times, expected once")
    thought = output.split(THINK_OPEN)[1].split(THINK_CLOSE)[0]
    if not thought.strip():
        raise FormatError("the thought is empty")
    return output.split(SOLUTION_OPEN)[1].split(SOLUTION_CLOSE)[0].strip()


def predicted_content(code_context: Mapping[str, str], output: str) -> dict[str, str]:
    """New content of each file the model's output edits; raises :class:`FormatError` when malformed."""
    edits = parse_edits(extract_solution(output))
    if not edits:
        raise FormatError("no SEARCH/REPLACE block found")
    return apply_edits(code_context, edits)


def search_replace_reward(
    code_context: Mapping[str, str],
    oracle_new_content: Mapping[str, str],
    output: str,
    engine: Engine = FAST,
) -> RewardResult:
    """The SWE-RL reward of one model output made of ``<think>`` + ``<solution>`` SEARCH/REPLACE edits."""
    try:
        pred_new_content = predicted_content(code_context, output)
    except FormatError as exc:
        return RewardResult(-1.0, error=str(exc))
    return content_reward(code_context, oracle_new_content, pred_new_content, engine)


def content_reward(
    code_context: Mapping[str, str],
    oracle_new_content: Mapping[str, str],
    pred_new_content: Mapping[str, str],
    engine: Engine = FAST,
) -> RewardResult:
    """The reward of a prediction given as new file contents (any edit format), in [0, 1]."""
    return change_similarity(
        file_changes(code_context, pred_new_content, engine),
        file_changes(code_context, oracle_new_content, engine),
        engine,
    )


def unidiff_changes(patch_text: str) -> dict[str, str]:
    """Per-file change text of a unified diff: hunks (each stripped) joined, renames marked.

    Unparseable text yields ``{}``; binary files are skipped.
    """
    try:
        patch = PatchSet(patch_text)
    except UnidiffParseError:
        return {}
    except Exception as exc:  # unidiff raises other errors (e.g. UnboundLocalError) on odd input
        warnings.warn(f"unidiff could not parse a patch: {type(exc).__name__}: {exc}", stacklevel=2)
        return {}
    changes: dict[str, str] = {}
    for patched_file in patch:
        if patched_file.is_binary_file:
            continue
        # unidiff keeps git's quotes and C escapes around a name that needs them; the key is the name itself.
        header, path = "", unquoted_path(patched_file.path)
        if patched_file.is_rename:
            source = _strip_prefix(unquoted_path(patched_file.source_file), "a/")
            target = _strip_prefix(unquoted_path(patched_file.target_file), "b/")
            header, path = f"rename from {source} to {target}", source
        body = "\n".join(str(hunk).strip() for hunk in patched_file)
        changes[path] = (header + "\n" + body).strip()
    return changes


def unidiff_reward(oracle_patches: list[str], pred_patches: list[str], engine: Engine = FAST) -> RewardResult:
    """The reward between two sets of unified diffs (later patches override earlier ones per file)."""
    return change_similarity(_merged_changes(pred_patches), _merged_changes(oracle_patches), engine)


def _merged_changes(patches: Iterable[str]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for text in patches:
        merged.update(unidiff_changes(text))
    return merged


def _strip_prefix(path: str, prefix: str) -> str:
    return path[len(prefix) :] if path.startswith(prefix) else path


# ---------------------------------------------------------------------------------------------- batch


@dataclass(frozen=True)
class RewardItem:
    """One rollout to score: the search/replace form (``output``) or the content form (``pred_new_content``)."""

    code_context: Mapping[str, str]
    oracle_new_content: Mapping[str, str]
    output: str | None = None
    pred_new_content: Mapping[str, str] | None = None

    def score(self, engine: Engine = FAST) -> RewardResult:
        """This item's reward, computed in the current process."""
        if self.output is not None:
            return search_replace_reward(self.code_context, self.oracle_new_content, self.output, engine)
        if self.pred_new_content is not None:
            return content_reward(self.code_context, self.oracle_new_content, self.pred_new_content, engine)
        raise ValueError("a RewardItem needs either output or pred_new_content")


BatchMode = Literal["auto", "processes", "serial"]

_POOL: ProcessPoolExecutor | None = None
_POOL_WORKERS = 0
# Below this many distinct items the cost of shipping them to workers outweighs the parallelism.
_MIN_PARALLEL_ITEMS = 8


def batch_rewards(items: Sequence[RewardItem], workers: int = 0, mode: BatchMode = "auto") -> list[RewardResult]:
    """Rewards of many rollouts, in input order, using every core (``workers=0``) or ``workers`` processes.

    Identical items (e.g. several rollouts of a GRPO group writing the same answer) are scored once.
    Results equal ``[item.score() for item in items]`` exactly.
    """
    keys = [_item_key(item) for item in items]
    unique: dict[tuple[object, ...], int] = {}
    for index, key in enumerate(keys):
        unique.setdefault(key, index)
    distinct = [items[i] for i in unique.values()]
    n_workers = workers or os.cpu_count() or 1
    if mode == "serial" or n_workers == 1 or (mode == "auto" and len(distinct) < _MIN_PARALLEL_ITEMS):
        scored = [item.score() for item in distinct]
    else:
        scored = _score_in_pool(distinct, n_workers)
    by_key = dict(zip(unique, scored, strict=True))
    return [by_key[key] for key in keys]


def _item_key(item: RewardItem) -> tuple[object, ...]:
    # CPython caches str hashes, so hashing the same context strings again is cheap.
    pred = tuple(sorted(item.pred_new_content.items())) if item.pred_new_content is not None else None
    return (
        item.output,
        pred,
        tuple(sorted(item.code_context.items())),
        tuple(sorted(item.oracle_new_content.items())),
    )


def _score_in_pool(items: list[RewardItem], n_workers: int) -> list[RewardResult]:
    pool = _pool(n_workers)
    # Longest first, dealt round-robin: similarity cost grows with patch size, so this balances cores.
    order = sorted(range(len(items)), key=lambda i: -_cost(items[i]))
    chunks = [order[w::n_workers] for w in range(n_workers)]
    futures = [pool.submit(_score_chunk, [items[i] for i in chunk]) for chunk in chunks if chunk]
    results: list[RewardResult | None] = [None] * len(items)
    for chunk, future in zip((c for c in chunks if c), futures, strict=True):
        for index, result in zip(chunk, future.result(), strict=True):
            results[index] = result
    return [r for r in results if r is not None]


def _cost(item: RewardItem) -> int:
    oracle = sum(len(v) for v in item.oracle_new_content.values())
    return oracle + len(item.output or "")


def _score_chunk(items: list[RewardItem]) -> list[RewardResult]:
    return [item.score() for item in items]


def _pool(n_workers: int) -> ProcessPoolExecutor:
    global _POOL, _POOL_WORKERS
    if _POOL is None or n_workers != _POOL_WORKERS:
        shutdown_pool()
        # forkserver: workers start from a clean interpreter, never from a forked copy of a trainer
        # process holding torch/tokenizer threads and locks.
        context = multiprocessing.get_context("forkserver")
        _POOL = ProcessPoolExecutor(max_workers=n_workers, mp_context=context)
        _POOL_WORKERS = n_workers
    return _POOL


def shutdown_pool() -> None:
    """Stop the worker processes of :func:`batch_rewards` (they start again on the next batch)."""
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(cancel_futures=True)
        _POOL = None


atexit.register(shutdown_pool)
