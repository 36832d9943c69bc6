"""Large synthetic repositories for benchmarks: thousands of issues and pull requests in seconds.

Owns a generator of a plausible, meaningless Python package history — modules of small arithmetic
functions whose constants pull requests change, with tests that follow sometimes — written through the
sample world's ``git fast-import`` builder into the same structures (:class:`RepoData`, bare repository,
``refs/pull/N/head``) the fake GitHub server serves. Deterministic for a given seed; builds are cached
next to the bare repository and reused while their parameters match. Never touches the network.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from swerl_core.demo.world import (
    Account,
    CommentSpec,
    CommitSpec,
    DemoError,
    FileOp,
    HistoryBatch,
    IssueSpec,
    PullSpec,
    PushSpec,
    RepoData,
    RepoSpec,
    World,
    Write,
    build_repos,
    load_repos,
    read_files,
    run_git,
    save_repos,
    world_build_lock,
)

__all__ = ["build_synthetic_repo", "extend_synthetic_repo"]

SYNTH_FORMAT = 2
FUNCTIONS_PER_MODULE = 12
START = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
END = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
KEYWORDS = ("Fixes #{n}", "fixes #{n}", "Closes #{n}", "closes: #{n}", "Resolves #{n}", "FIX #{n}")
_FUNC = re.compile(r"def f(\d+)_(\d+)\(x: int\) -> int:\n.*\n    return x \* (-?\d+) \+ (-?\d+)\n")
_TEST = re.compile(r"assert f(\d+)_(\d+)\(2\) == (-?\d+)\n")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Model:
    """The package as numbers: each function's ``(a, b)`` and the value its test expects at ``x = 2``."""

    package: str
    funcs: list[list[tuple[int, int]]]
    tested: list[list[int]]

    def module_path(self, m: int) -> str:
        """Where module ``m`` lives."""
        return f"src/{self.package}/mod{m}.py"

    def test_path(self, m: int) -> str:
        """Where the tests of module ``m`` live."""
        return f"tests/test_mod{m}.py"

    def module_text(self, m: int) -> str:
        """The source of module ``m``."""
        parts = [f'"""Synthetic module {m}: small arithmetic helpers."""\n']
        for k, (a, b) in enumerate(self.funcs[m]):
            parts.append(
                f'\n\ndef f{m}_{k}(x: int) -> int:\n    """Scale and shift ``x`` (helper {k} of '
                f'module {m})."""\n    return x * {a} + {b}\n'
            )
        return "".join(parts)

    def test_text(self, m: int) -> str:
        """The tests of module ``m``, as last updated."""
        names = ", ".join(f"f{m}_{k}" for k in range(len(self.funcs[m])))
        tests = "".join(
            f"\n\ndef test_f{m}_{k}():\n    assert f{m}_{k}(2) == {value}\n" for k, value in enumerate(self.tested[m])
        )
        return f"from {self.package}.mod{m} import {names}\n{tests}"

    def files(self) -> tuple[FileOp, ...]:
        """Every file of the package, for the first commit."""
        ops: list[FileOp] = [
            Write(f"src/{self.package}/__init__.py", f'"""{self.package}: synthetic."""\n'),
            Write("README.md", f"# {self.package}\n\nA synthetic benchmark package.\n"),
            Write("pyproject.toml", _PYPROJECT.format(name=self.package)),
        ]
        for m in range(len(self.funcs)):
            ops += [Write(self.module_path(m), self.module_text(m)), Write(self.test_path(m), self.test_text(m))]
        return tuple(ops)

    @classmethod
    def fresh(cls, package: str, modules: int, rng: random.Random) -> _Model:
        """A new package of ``modules`` modules with random constants."""
        funcs = [
            [(rng.randint(1, 9), rng.randint(-50, 50)) for _ in range(FUNCTIONS_PER_MODULE)] for _ in range(modules)
        ]
        return cls(package, funcs, [[2 * a + b for a, b in module] for module in funcs])

    @classmethod
    def parse(cls, package: str, files: dict[str, bytes]) -> _Model:
        """Read the model back from a checkout of the default branch."""
        funcs: dict[int, dict[int, tuple[int, int]]] = {}
        tested: dict[int, dict[int, int]] = {}
        for content in files.values():
            text = content.decode()
            for m, k, a, b in _FUNC.findall(text):
                funcs.setdefault(int(m), {})[int(k)] = (int(a), int(b))
            for m, k, value in _TEST.findall(text):
                tested.setdefault(int(m), {})[int(k)] = int(value)
        if not funcs:
            raise DemoError(f"no synthetic modules found for package {package}")
        count = max(funcs) + 1
        return cls(
            package,
            [[funcs[m][k] for k in sorted(funcs[m])] for m in range(count)],
            [[tested[m][k] for k in sorted(tested[m])] for m in range(count)],
        )


_PYPROJECT = """[project]
name = "{name}"
version = "0.1.0"

[tool.pytest.ini_options]
pythonpath = ["src"]
"""


@dataclass
class _Generator:
    """Writes issues and pull requests in creation order, one number and one time slot each."""

    model: _Model
    rng: random.Random
    full_name: str
    next_number: int
    clock: datetime
    step: timedelta
    authors: list[Account]
    issues: list[IssueSpec] = field(default_factory=list)
    pulls: list[PullSpec] = field(default_factory=list)
    open_issues: list[int] = field(default_factory=list)

    def _tick(self) -> tuple[int, datetime]:
        number, moment = self.next_number, self.clock
        self.next_number += 1
        self.clock += self.step
        return number, moment

    def issue(self) -> None:
        """File an issue about one function returning the wrong value."""
        number, moment = self._tick()
        m, k = self.rng.randrange(len(self.model.funcs)), self.rng.randrange(FUNCTIONS_PER_MODULE)
        author = self.rng.choice(self.authors)
        hint = CommentSpec(
            self.rng.choice(self.authors),
            _stamp(moment + self.step / 4),
            f"Probably the constant in `f{m}_{k}`; the test in {self.model.test_path(m)} agrees.",
        )
        self.issues.append(
            IssueSpec(
                number,
                f"f{m}_{k} returns the wrong value for x = 2",
                f"In `{self.model.module_path(m)}`, `f{m}_{k}(2)` does not return what the docs promise.",
                author,
                _stamp(moment),
                labels=("bug",),
                comments=(hint,) if self.rng.random() < 0.5 else (),
            )
        )
        self.open_issues.append(number)

    def pull(self, outcome: str) -> None:
        """Open a pull request changing one function in each of 1-3 modules and, 60% of the time, the
        test of the first; linked to an issue 70% of the time."""
        number, moment = self._tick()
        ops: list[FileOp] = []
        touched = self.rng.sample(range(len(self.model.funcs)), k=min(len(self.model.funcs), self.rng.randint(1, 3)))
        for m in touched:
            k = self.rng.randrange(FUNCTIONS_PER_MODULE)
            a, _ = self.model.funcs[m][k]
            self.model.funcs[m][k] = (a, self.rng.randint(-50, 50))
            ops.append(Write(self.model.module_path(m), self.model.module_text(m)))
            if m == touched[0] and self.rng.random() < 0.6:
                self.model.tested[m][k] = 2 * a + self.model.funcs[m][k][1]
                ops.append(Write(self.model.test_path(m), self.model.test_text(m)))
        self.pulls.append(self._pull_spec(number, moment, tuple(ops), outcome))

    def _pull_spec(self, number: int, moment: datetime, ops: tuple[FileOp, ...], outcome: str) -> PullSpec:
        link = (
            self.open_issues.pop(self.rng.randrange(len(self.open_issues)))
            if (self.open_issues and self.rng.random() < 0.7)
            else None
        )
        body = self.rng.choice(KEYWORDS).format(n=link) if link else "Small fix, no issue."
        author = self.rng.choice(self.authors)
        commit = CommitSpec(f"Adjust constants ({number})", _stamp(moment - timedelta(minutes=20)), ops)
        ends = _stamp(moment + self.step / 3) if outcome in ("merged", "closed") else None
        closes = (f"{self.full_name}#{link}",) if link else ()
        comments = (
            (CommentSpec(self.rng.choice(self.authors), _stamp(moment + self.step / 6), "LGTM"),)
            if (self.rng.random() < 0.3)
            else ()
        )
        return PullSpec(
            number,
            f"Fix constants in {len(ops)} file(s)",
            body,
            author,
            _stamp(moment),
            f"fix-{number}",
            (commit,),
            outcome=outcome,  # type: ignore[arg-type]
            merge=self.rng.choice(("merge", "squash")),
            closed_at=ends,
            closes=closes,
            comments=comments,
        )

    def run(self, n_prs: int, n_issues: int) -> None:
        """Interleave ``n_issues`` issues and ``n_prs`` pull requests (95% merged, 3% closed, 2% open)."""
        issues_left, pulls_left = n_issues, n_prs
        while issues_left or pulls_left:
            if issues_left and self.rng.random() < issues_left / (issues_left + pulls_left):
                self.issue()
                issues_left -= 1
            else:
                roll = self.rng.random()
                self.pull("merged" if roll < 0.95 else "closed" if roll < 0.98 else "open")
                pulls_left -= 1


def _authors(full_name: str) -> list[Account]:
    base = int(hashlib.sha256(full_name.encode()).hexdigest()[:6], 16) * 100
    return [Account(f"dev{i:02d}", base + i, name=f"Developer {i:02d}") for i in range(20)]


def _repo_id(full_name: str) -> int:
    return 900_000_000 + int(hashlib.sha256(full_name.encode()).hexdigest()[:7], 16) % 90_000_000


def _spec(full_name: str, n_prs: int, n_issues: int, seed: int) -> RepoSpec:
    rng = random.Random(f"{full_name}:{seed}")
    package = re.sub(r"\W", "_", full_name.split("/", 1)[1]).lower() or "pkg"
    model = _Model.fresh(package, max(4, min(60, n_prs // 40)), rng)
    owner = Account(
        full_name.split("/", 1)[0], _repo_id(full_name) % 1_000_000, type="Organization", association="NONE"
    )
    step = (END - START) / max(1, n_prs + n_issues)
    gen = _Generator(model, rng, full_name, 1, START, step, _authors(full_name))
    gen.run(n_prs, n_issues)
    first = _stamp(START - timedelta(days=1))
    initial = PushSpec(CommitSpec("Initial commit", first, model.files()), gen.authors[0])
    return RepoSpec(
        full_name,
        _repo_id(full_name),
        owner,
        f"Synthetic benchmark repository {full_name}.",
        first,
        initial,
        tuple(gen.issues),
        tuple(gen.pulls),
    )


def _manifest(root: Path, full_name: str) -> Path:
    return root / f"{full_name}.json"


def build_synthetic_repo(
    root: Path, full_name: str, n_prs: int = 2000, n_issues: int = 1500, seed: int = 0
) -> RepoData:
    """Build (or reuse) ``root/<owner>/<name>.git`` with ``n_prs`` pull requests and ``n_issues`` issues.

    Dates run from 2025-01 to 2026-10 in creation order; each pull request changes 1-3 modules, and the
    test file of one of them 60% of the time; 95% are merged (merge commits and squashes), 3% closed, 2%
    open; 70% name an issue with a closing keyword. A build with the same parameters is reused; one that
    was extended is rebuilt.
    """
    root = Path(root).resolve()
    manifest = _manifest(root, full_name)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(f"{SYNTH_FORMAT}:{full_name}:{n_prs}:{n_issues}:{seed}".encode()).hexdigest()
    with world_build_lock(root, manifest):
        if manifest.exists():
            stored, repos = load_repos(manifest)
            if stored == digest and repos[0].bare_path.is_dir():
                return repos[0]
            manifest.unlink()
        (repo,) = build_repos(root, [_spec(full_name, n_prs, n_issues, seed)])
        save_repos(manifest, [repo], digest)
    return repo


def extend_synthetic_repo(repo: RepoData, n_new_prs: int = 50, seed: int = 1) -> RepoData:
    """Add ``n_new_prs`` merged pull requests (and issues for most), dated after everything in ``repo``.

    Mutates ``repo`` and its git repository in place (servers serving it see the change) and drops the
    build cache, so the next :func:`build_synthetic_repo` with the original parameters rebuilds.
    """
    rng = random.Random(f"{repo.full_name}:extend:{seed}:{repo.version}")
    main = run_git(repo.bare_path, "rev-parse", f"refs/heads/{repo.default_branch}").decode().strip()
    package = next(p.split("/")[1] for p in read_files(repo.bare_path, main) if p.endswith("/__init__.py"))
    model = _Model.parse(package, read_files(repo.bare_path, main))
    taken = [*repo.issues, *repo.pulls, *repo.deleted_issues, *repo.moved_issues]
    latest = max(
        [repo.pushed_at, *(i.updated_at for i in repo.issues.values()), *(p.updated_at for p in repo.pulls.values())]
    )
    clock = datetime.fromisoformat(latest.replace("Z", "+00:00")) + timedelta(hours=6)
    gen = _Generator(
        model, rng, repo.full_name, max(taken, default=0) + 1, clock, timedelta(hours=3), _authors(repo.full_name)
    )
    for _ in range(n_new_prs):
        if rng.random() < 0.75:
            gen.issue()
        gen.pull("merged")
    World(repo.bare_path.parent, [repo]).add_history(HistoryBatch(repo.full_name, tuple(gen.issues), tuple(gen.pulls)))
    repo.bare_path.with_suffix(".json").unlink(missing_ok=True)
    return repo
