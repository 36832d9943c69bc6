"""The learnable world: thousands of one-line bug fixes a few-million-parameter model can learn on a CPU.

The sample world teaches the answer format but not repair (too few pull requests, all different). This
world is built for learning: a few generated repositories whose modules each hold one short function
with one bug of a known family (flipped comparison, off-by-one range, missing ``None`` check, wrong
default, swapped arguments, typo in a string constant); every bug has an issue that describes it (naming
the file and the function), a merged pull request that fixes it and closes the issue, and a test in the first
commit that fails on the bug and passes on the fix (:func:`function_test`). Paths, function
names and parameters are drawn from small word lists, so a tokenizer trained on the world keeps them
whole and a tiny model has few identifiers to copy from the prompt.

It is served by the same fake GitHub (:class:`~swerl_core.demo.github_server.FakeGitHub`) and goes
through the same ingest and curate as any world (:func:`learnable_snapshot`); pull requests merged after
:attr:`LearnableWorld.heldout_after` form the held-out split. :func:`learnable_base_model` builds the model
the learnable-cpu recipe starts from. :func:`bug_fixes` is the generator on its own (also used for the toy
wiring check, where the issue states the fix line for line).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from swerl_core.config import Secret, Settings
from swerl_core.demo.errors import DemoError
from swerl_core.demo.induction import InductionResult, InductionSpec, warm_up_induction
from swerl_core.demo.tiny_model import LEARNABLE_SPEC, init_tiny_model
from swerl_core.demo.world import (
    BUILD_WAIT_S,
    Account,
    CommitSpec,
    IssueSpec,
    PullSpec,
    PushSpec,
    RepoSpec,
    World,
    Write,
    build_repos,
    load_repos,
    save_repos,
    world_build_lock,
)
from swerl_core.locks import LockFolder
from swerl_core.progress import ProgressCallback

__all__ = [
    "BASE_MODEL",
    "BugFix",
    "LearnableWorld",
    "PYTEST_INI",
    "bug_fixes",
    "build_learnable_world",
    "decoy_fix",
    "function_test",
    "learnable_base_model",
    "learnable_snapshot",
    "learnable_texts",
]

LEARNABLE_FORMAT = 3  # 3: each function's test in the first commit
PYTEST_INI = "[pytest]\npythonpath = src\n"
SOURCE_RECORD = "learnable-source.json"
BASE_MODEL = Path("models/tiny-learnable-induction")  # under SWERL_HOME: the learnable-cpu recipe's base_model
REPOS = ("learn/shop", "learn/games", "learn/notes")
# Interleaved so that every stretch of the world holds each kind. Four families fix a line by copying it with one
# value taken from the issue where the line's own value competes (comparison, default, constant, status): the
# copy-from-context a warm-up teaches gets the line right and the value wrong, which is where GRPO has room.
FAMILIES = ("comparison", "off_by_one", "default", "none_check", "constant", "swapped", "status", "typo")
ONE_LINE_FAMILIES = ("comparison", "off_by_one", "default", "constant", "swapped", "status", "typo")
VERBS = ("scale", "check", "count", "pick", "clip", "merge", "load", "parse")
NOUNS = ("price", "score", "item", "level", "token", "limit", "order", "page")
FOLDERS = ("core", "util", "io", "math", "text", "web")
ARGS = ("value", "total", "size", "rate", "count", "width")
WORDS = ("ready", "paid", "draft", "closed", "hidden", "active")
FLIPS = {">": "<", "<": ">", ">=": "<=", "<=": ">="}
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
HELDOUT_AFTER = datetime(2026, 6, 1, tzinfo=UTC)
SPAN = timedelta(days=480)  # train pull requests are merged between START and START + SPAN
HELDOUT_SPAN = timedelta(days=90)


@dataclass(frozen=True)
class BugFix:
    """One bug and its fix: the module before and after, and the issue that describes the bug."""

    family: str
    path: str
    function: str
    before: str
    after: str
    title: str
    body: str

    @property
    def module(self) -> str:
        """The dotted module of :attr:`path` under ``src/`` (``src/shop/core/price3.py`` → ``shop.core.price3``)."""
        return self.path.removeprefix("src/").removesuffix(".py").replace("/", ".")

    @property
    def test_path(self) -> str:
        """Where the function's test lives: ``tests/test_<folder>_<module>.py`` (unique, pytest's rootdir import)."""
        parts = self.path.removesuffix(".py").split("/")
        return f"tests/test_{parts[-2]}_{parts[-1]}.py"

    @property
    def test_id(self) -> str:
        """The pytest node id of the function's test."""
        return f"{self.test_path}::test_{self.function}"


def bug_fixes(count: int, seed: int = 0, package: str = "shop", explicit: bool = False) -> list[BugFix]:
    """``count`` bug fixes in distinct module paths of ``package``, deterministic for ``seed``.

    With ``explicit`` the issue states the fix itself (the line to replace and its replacement) and only
    one-line families are drawn: the toy set on which any working GRPO must raise the reward.
    """
    rng = random.Random(f"{package}:{seed}:{explicit}")
    paths = _paths(package, rng)
    families = ONE_LINE_FAMILIES if explicit else FAMILIES
    fixes = []
    for index in range(count):
        path = next(paths)
        function = f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}"
        before, after, title, body = _BUILDERS[families[index % len(families)]](function, path, rng)
        if explicit:
            old, new = _changed_line(before, after)
            title = f"Fix {function} in {path}"
            body = f"In `{path}`, replace the line `{old.strip()}` with `{new.strip()}`."
        header = f'"""{function.split("_")[1].capitalize()} helpers."""\n\n\n'
        fixes.append(
            BugFix(families[index % len(families)], path, function, header + before, header + after, title, body)
        )
    return fixes


def decoy_fix(fix: BugFix) -> BugFix:
    """A well-formed wrong fix of ``fix``'s module: its docstring line reworded, the bug left in.

    Its SEARCH/REPLACE answer applies and scores between 0 and 1 (0.4-0.6 on the toy set), below the
    real fix's 1.0: the toy set's SFT data pairs each prompt with both answers (see
    :func:`swerl_core.demo.toy.write_toy_snapshot`).
    """
    docstring, rest = fix.before.split("\n", 1)
    reworded = docstring.replace(" helpers.", " utilities.")
    if reworded == docstring:
        raise ValueError(f"{fix.path} has no generated docstring line to reword: {docstring!r}")
    return replace(fix, after=f"{reworded}\n{rest}")


# Inputs tried, in order, until the buggy and the fixed function disagree; by number of positional arguments.
_PROBES: dict[int, tuple[tuple[object, ...], ...]] = {
    0: ((),),
    1: ((None,), (0,), (1,), (3,), (7,)),
    2: ((2, 5), (5, 2), (3, 3), (7, 4)),
}


def function_test(fix: BugFix) -> str:
    """A pytest module for ``fix``'s function that fails on its bug and passes on its fix (at :attr:`BugFix.test_path`).

    The generated code of both versions is run here (it is swerl's own, never a model's) on small inputs until they
    disagree; the test asserts the fixed result for that input (a bug that raises fails the test all the same).
    Raises ValueError when no input tells the two apart.
    """
    buggy, fixed = _function_of(fix.before, fix.function), _function_of(fix.after, fix.function)
    required = [p for p in inspect.signature(fixed).parameters.values() if p.default is inspect.Parameter.empty]
    optional = len(inspect.signature(fixed).parameters) - len(required)
    for args in _PROBES[len(required) + optional] + (_PROBES[len(required)] if optional else ()):
        if len(args) < len(required):
            continue
        expected = _outcome(fixed, args)
        if isinstance(expected, Exception) or not _is_literal(expected) or _outcome(buggy, args) == expected:
            continue
        call = f"{fix.function}({', '.join(repr(a) for a in args)})"
        head = f"from {fix.module} import {fix.function}\n\n\n"
        return head + f"def test_{fix.function}():\n    assert {call} == {expected!r}\n"
    raise ValueError(f"no input tells the bug of {fix.path} ({fix.family}) from its fix")


def _function_of(source: str, name: str) -> Callable[..., object]:
    namespace: dict[str, object] = {}
    exec(compile(source, f"<{name}>", "exec"), namespace)  # noqa: S102 - the world's own generated code
    function = namespace[name]
    assert callable(function)
    return function


def _outcome(function: Callable[..., object], args: tuple[object, ...]) -> object:
    try:
        return function(*args)
    except Exception as exc:  # a bug may raise (None * 3): an outcome like any other
        return exc


def _is_literal(value: object) -> bool:
    try:
        return bool(ast.literal_eval(repr(value)) == value)
    except (ValueError, SyntaxError):
        return False


def learnable_texts(count: int = 200) -> list[str]:
    """Code and issue texts of the world (tokenizer training material: keeps its identifiers whole)."""
    texts: list[str] = []
    for package in _packages():
        for fix in bug_fixes(count, package=package):
            texts += [fix.before, fix.after, fix.title, fix.body, fix.path]
    return texts


def learnable_base_model(out_dir: Path, progress: ProgressCallback | None = None, seed: int = 0) -> InductionResult:
    """The learnable world's base model in ``out_dir``: :data:`LEARNABLE_SPEC` with this world's tokenizer,
    given the induction warm-up drawn from ``seed`` (reused when ``out_dir`` already holds it).

    The random-init model it starts from is kept beside it as ``<out_dir>-random`` with a record of its shape
    and tokenizer texts, and built again when missing, incomplete, or made from another shape or texts (the
    warm-up then runs again too: it keys on the source model's weights).
    """
    out_dir = Path(out_dir)
    source = out_dir.with_name(f"{out_dir.name}-random")
    source.parent.mkdir(parents=True, exist_ok=True)
    with LockFolder.beside(source).for_path("model", source).hold(BUILD_WAIT_S):
        record = _source_record()
        if not _is_current(source, record):
            # Built aside and renamed into place: a kill mid-write never leaves a half model that looks whole.
            staging = Path(tempfile.mkdtemp(prefix=f".{source.name}.", dir=source.parent))
            init_tiny_model(staging, LEARNABLE_SPEC, corpus=learnable_texts())
            (staging / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            shutil.rmtree(source, ignore_errors=True)
            staging.rename(source)
    return warm_up_induction(source, out_dir, InductionSpec(seed=seed), progress=progress)


def learnable_snapshot(settings: Settings, world: LearnableWorld, progress: ProgressCallback | None = None) -> str:
    """Serve ``world`` on 127.0.0.1, ingest it and curate it the way the learnable-cpu recipe expects (the
    fixed module is the whole code context; held out after :data:`HELDOUT_AFTER`); returns the snapshot id.

    Raises :class:`DemoError` when the ingest stopped or skipped a pull request: every one is answerable.
    """
    from swerl_core import curate, ingest
    from swerl_core.demo.github_server import FakeGitHub

    token = "learnable-world-token"  # the local server's own token, never a GitHub credential
    with FakeGitHub(world, token=token) as server:
        github = replace(settings.github, api_url=server.url, seconds_between_requests=0, local_clones=True)
        request = ingest.IngestRequest(repos=tuple(world.repos), token=Secret(token))
        ingested = ingest.run(replace(settings, github=github), request, progress)
    if ingested.status != "ok" or ingested.prs_skipped:
        reason = ingested.message or f"{ingested.prs_skipped} pull requests skipped: {dict(ingested.skipped_by_reason)}"
        raise DemoError(f"the learnable world did not ingest whole ({ingested.status}): {reason}")
    one_file = replace(settings, curate=replace(settings.curate, relevant_files=0))
    return curate.run(one_file, curate.CurateRequest("learnable", world.heldout_after), progress).id


def _source_record() -> dict[str, object]:
    """What the random-init model is made of: its shape and the texts its tokenizer learned from."""
    texts = hashlib.sha256("\x00".join(learnable_texts()).encode()).hexdigest()
    return {"spec": asdict(LEARNABLE_SPEC), "tokenizer_texts": texts}


def _is_current(model_dir: Path, record: dict[str, object]) -> bool:
    try:
        return bool(json.loads((model_dir / SOURCE_RECORD).read_text(encoding="utf-8")) == record)
    except (OSError, ValueError):
        return False


def _packages() -> list[str]:
    return [name.split("/")[1] for name in REPOS]


def _paths(package: str, rng: random.Random) -> Iterator[str]:
    combos = [(f, n, k) for f in FOLDERS for n in NOUNS for k in range(100)]
    rng.shuffle(combos)
    for folder, noun, k in combos:
        yield f"src/{package}/{folder}/{noun}{k}.py"


def _changed_line(before: str, after: str) -> tuple[str, str]:
    changed = [(old, new) for old, new in zip(before.split("\n"), after.split("\n"), strict=True) if old != new]
    return changed[0]


def _comparison(fn: str, path: str, rng: random.Random) -> tuple[str, str, str, str]:
    a, b = rng.sample(ARGS, 2)
    good = rng.choice(list(FLIPS))
    body = f"def {fn}({a}, {b}):\n    if {a} {{op}} {b}:\n        return {a}\n    return {b}\n"
    issue = f"In `{path}`, `{fn}` compares with `{FLIPS[good]}` where it should use `{good}`."
    return body.format(op=FLIPS[good]), body.format(op=good), f"{fn} compares the wrong way", issue


def _off_by_one(fn: str, path: str, rng: random.Random) -> tuple[str, str, str, str]:
    a = rng.choice(ARGS)
    start = rng.randint(0, 3)
    body = f"def {fn}({a}):\n    return list(range({start}, {a}{{end}}))\n"
    issue = f"In `{path}`, `{fn}({a})` leaves out `{a}` itself: the range must end at `{a} + 1`."
    return body.format(end=""), body.format(end=" + 1"), f"{fn} stops one short", issue


def _none_check(fn: str, path: str, rng: random.Random) -> tuple[str, str, str, str]:
    a = rng.choice(ARGS)
    default, factor = rng.randint(0, 9), rng.randint(2, 9)
    guard = f"    if {a} is None:\n        return {default}\n"
    tail = f"    return {a} * {factor}\n"
    issue = f"In `{path}`, `{fn}(None)` raises TypeError; it should return `{default}` when `{a}` is None."
    return f"def {fn}({a}):\n{tail}", f"def {fn}({a}):\n{guard}{tail}", f"{fn} crashes on None", issue


def _default(fn: str, path: str, rng: random.Random) -> tuple[str, str, str, str]:
    a, b = rng.sample(ARGS, 2)
    good, bad = rng.sample(range(10), 2)
    body = f"def {fn}({a}, {b}={{value}}):\n    return {a} + {b}\n"
    issue = f"In `{path}`, the default of `{b}` in `{fn}` is `{bad}`; it should be `{good}`."
    return body.format(value=bad), body.format(value=good), f"{fn} has the wrong default", issue


def _constant(fn: str, path: str, rng: random.Random) -> tuple[str, str, str, str]:
    a = rng.choice(ARGS)
    good, bad = rng.sample(range(2, 10), 2)
    body = f"def {fn}({a}):\n    return {a} * {{factor}}\n"
    issue = f"In `{path}`, `{fn}` multiplies by `{bad}`; it should multiply by `{good}`."
    return body.format(factor=bad), body.format(factor=good), f"{fn} uses the wrong factor", issue


def _status(fn: str, path: str, rng: random.Random) -> tuple[str, str, str, str]:
    good, bad = rng.sample(WORDS, 2)
    body = f'def {fn}():\n    return "{{word}}"\n'
    issue = f'In `{path}`, `{fn}` returns "{bad}"; it should return "{good}".'
    return body.format(word=bad), body.format(word=good), f"{fn} returns the wrong status", issue


def _swapped(fn: str, path: str, rng: random.Random) -> tuple[str, str, str, str]:
    a, b = rng.sample(ARGS, 2)
    call = rng.choice(("pow", "divmod", "round"))
    body = f"def {fn}({a}, {b}):\n    return {call}({{args}})\n"
    issue = f"In `{path}`, `{fn}` calls `{call}({b}, {a})`; the arguments are swapped, it must be `{call}({a}, {b})`."
    return body.format(args=f"{b}, {a}"), body.format(args=f"{a}, {b}"), f"{fn} swaps its arguments", issue


def _typo(fn: str, path: str, rng: random.Random) -> tuple[str, str, str, str]:
    word = rng.choice(WORDS)
    i = rng.choice([k for k in range(len(word) - 1) if word[k] != word[k + 1]])  # a swap that changes the word
    typo = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    body = f'def {fn}():\n    return "{{word}}"\n'
    issue = f'In `{path}`, `{fn}` returns "{typo}", a typo: the status is "{word}".'
    return body.format(word=typo), body.format(word=word), f"{fn} returns a misspelled status", issue


_BUILDERS = {
    "comparison": _comparison,
    "off_by_one": _off_by_one,
    "none_check": _none_check,
    "default": _default,
    "constant": _constant,
    "status": _status,
    "swapped": _swapped,
    "typo": _typo,
}


class LearnableWorld(World):
    """The built learnable world: its repositories, and the date after which merges are held out."""

    heldout_after: datetime = HELDOUT_AFTER


def build_learnable_world(
    root: Path, seed: int = 0, prs_per_repo: int = 800, heldout_share: float = 0.05
) -> LearnableWorld:
    """Build (or reuse) the learnable world under ``root``: ``prs_per_repo`` merged fixes in each of 3 repos.

    Every pull request fixes one module of its repository's first commit and closes the issue that
    describes the bug. The last ``heldout_share`` of each repository's fixes are merged after
    :data:`HELDOUT_AFTER` (the held-out split); the others before it. Deterministic for ``seed``.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "world.json"
    params = (LEARNABLE_FORMAT, REPOS, seed, prs_per_repo, heldout_share)
    digest = hashlib.sha256(repr(params).encode()).hexdigest()
    with world_build_lock(root, root):
        if manifest.exists():
            stored, repos = load_repos(manifest)
            if stored == digest and all(r.bare_path.is_dir() for r in repos):
                return LearnableWorld(root, repos, manifest)
            manifest.unlink()
        specs = [_repo_spec(name, seed, prs_per_repo, heldout_share) for name in REPOS]
        repos = build_repos(root, specs)
        save_repos(manifest, repos, digest)
    return LearnableWorld(root, repos, manifest)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _repo_spec(full_name: str, seed: int, count: int, heldout_share: float) -> RepoSpec:
    owner_login, package = full_name.split("/")
    repo_id = 700_000_000 + int(hashlib.sha256(full_name.encode()).hexdigest()[:6], 16)
    owner = Account(owner_login, repo_id % 1_000_000, type="Organization", association="NONE")
    authors = [Account(f"coder{i}", repo_id % 1_000_000 + i + 1, name=f"Coder {i}") for i in range(8)]
    fixes = bug_fixes(count, seed, package)
    created = _stamp(START - timedelta(days=2))
    files = [Write(f.path, f.before) for f in fixes] + [Write(f"src/{package}/__init__.py", f'"""{package}."""\n')]
    # Every function's test is in the first commit (failing until its fix merges), so that each pull request
    # validates the SWE-bench way with no test patch: its own test fails before and passes after.
    files += [Write(f.test_path, function_test(f)) for f in fixes] + [Write("pytest.ini", PYTEST_INI)]
    initial = PushSpec(CommitSpec("Initial commit", created, tuple(files)), authors[0])
    heldout_from = count - max(1, round(count * heldout_share))
    issues, pulls = [], []
    for index, fix in enumerate(fixes):
        if index < heldout_from:
            opened = START + SPAN * index / heldout_from
        else:
            opened = HELDOUT_AFTER + timedelta(days=1) + HELDOUT_SPAN * (index - heldout_from) / (count - heldout_from)
        issue_no, pull_no = 2 * index + 1, 2 * index + 2
        author = authors[(index * 5 + seed) % len(authors)]
        issues.append(IssueSpec(issue_no, fix.title, fix.body, author, _stamp(opened), labels=("bug",)))
        commit = CommitSpec(f"Fix {fix.function}", _stamp(opened + timedelta(hours=1)), (Write(fix.path, fix.after),))
        pulls.append(
            PullSpec(
                pull_no,
                f"Fix {fix.function}",
                f"Fixes #{issue_no}",
                authors[(index * 3 + 1) % len(authors)],
                _stamp(opened + timedelta(hours=2)),
                f"fix-{pull_no}",
                (commit,),
                merge="squash",
                closed_at=_stamp(opened + timedelta(hours=5)),
                closes=(f"{full_name}#{issue_no}",),
            )
        )
    return RepoSpec(
        full_name, repo_id, owner, f"Learnable world: {package}.", created, initial, tuple(issues), tuple(pulls)
    )
