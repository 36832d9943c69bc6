"""The layer rule of DESIGN.md, checked on the source: imports only point down, and no module imports loop.

Every ``.py`` under ``swerl_core/`` and ``flows/`` is parsed with :mod:`ast`; every ``import`` and
``from … import`` node counts as an edge wherever it sits: at module level, inside a function (a lazy import
still runs, and is how loops hide) and inside ``if TYPE_CHECKING:`` blocks. Type-only imports count too: an
annotation naming another layer's type is a dependency on that layer all the same (mypy follows it, and a
reader must), so a type that two layers need belongs in the lower one.

Layers, from the top: entry points (the flows, the CLI, the stack, the demo), the stages in pipeline order,
shared modules, base. A stage may import an earlier stage, never a later one; shared modules import only
shared and base; base imports only base; a stage imports another (earlier) stage only where
:data:`STAGE_NEEDS` declares the need; nothing outside the CLI imports the CLI, nothing outside the flows
imports the flows, and only entry points import the demo. Importing ``a.b.c`` also runs ``a.b/__init__``, so
for cycles an import counts as an edge to each enclosing package as well (except the importer's own).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("swerl_core", "flows")

ENTRY = "entry"
SHARED = "shared"
BASE = "base"
# The stages in pipeline order: a stage may import the ones before it.
STAGES = ("ingest", "curate", "train", "evaluate", "registry")

# Every module belongs to the layer of its longest listed prefix; an unlisted module fails the test, so a new
# module gets its layer by a decision, not by default.
LAYERS: dict[str, str] = {
    "flows": ENTRY,
    "swerl_core.cli": ENTRY,
    "swerl_core.stack": ENTRY,
    "swerl_core.demo": ENTRY,
    "swerl_core.rollout_server": ENTRY,
    **{f"swerl_core.{stage}": stage for stage in STAGES},
    "swerl_core": SHARED,  # the package itself (empty)
    "swerl_core.bucket": SHARED,
    "swerl_core.chat_endpoint": SHARED,
    "swerl_core.config": SHARED,
    "swerl_core.diff_paths": SHARED,
    "swerl_core.execution": SHARED,
    "swerl_core.file_kinds": SHARED,
    "swerl_core.git": SHARED,
    "swerl_core.github": SHARED,
    "swerl_core.json_files": BASE,
    "swerl_core.k8s": SHARED,
    "swerl_core.lineage": SHARED,
    "swerl_core.locks": SHARED,
    "swerl_core.models": SHARED,
    "swerl_core.package_files": SHARED,
    "swerl_core.paths": SHARED,
    "swerl_core.prompts": SHARED,
    "swerl_core.quiet": SHARED,
    "swerl_core.repo_names": SHARED,
    "swerl_core.reward": SHARED,
    "swerl_core.runs": SHARED,
    "swerl_core.search_replace": SHARED,
    "swerl_core.snapshot_schema": SHARED,
    "swerl_core.snapshots": SHARED,
    "swerl_core.store": SHARED,
    "swerl_core.vllm_engine": SHARED,
    "swerl_core.weight_sync": SHARED,
    "swerl_core.errors": BASE,
    "swerl_core.interrupts": BASE,
    "swerl_core.progress": BASE,
}
# The earlier stages a stage truly needs, declared: the registry gates on evaluations. Anything else two stages
# share (run directories, lineage, snapshots' files) is a shared module's, so a new need is a decision made here.
STAGE_NEEDS: dict[str, tuple[str, ...]] = {"registry": ("evaluate",)}
# Entry points only the named entry points may import (the CLI and the flows are programs, not libraries).
PRIVATE_ENTRIES = ("swerl_core.cli", "flows")
DEMO = "swerl_core.demo"


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} -> {self.target}"


def module_files() -> dict[str, Path]:
    """Every module of the project by dotted name (a package by its ``__init__.py``)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> Iterator[str]:
    """The project modules one import node names (``from pkg import sub`` names ``pkg.sub`` when it is a module)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    assert node.level == 0, "relative imports are not used in this project"
    base = node.module or ""
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in modules else base


def within(name: str, prefix: str) -> bool:
    """Whether module ``name`` is ``prefix`` or inside it."""
    return name == prefix or name.startswith(prefix + ".")


def project_edges(modules: dict[str, Path]) -> list[Edge]:
    """Every import of a project module by a project module, at any depth of the source."""
    edges: list[Edge] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in dict.fromkeys(imported_modules(node, modules)):
                if any(within(target, package) for package in PACKAGES) and target != name:
                    edges.append(Edge(name, target, str(path.relative_to(ROOT)), node.lineno))
    return edges


def layer_of(name: str) -> str:
    """The layer of a module: that of its longest prefix in :data:`LAYERS`."""
    owners = [prefix for prefix in LAYERS if within(name, prefix)]
    assert owners, f"{name} has no layer: add it to LAYERS in {Path(__file__).name}"
    return LAYERS[max(owners, key=len)]


def upward_reason(edge: Edge) -> str | None:
    """Why an import points up (or sideways into a program), or None when it points down."""
    for entry in PRIVATE_ENTRIES:
        if within(edge.target, entry) and not within(edge.source, entry):
            return f"only {entry} imports {entry}"
    source, target = layer_of(edge.source), layer_of(edge.target)
    if within(edge.target, DEMO) and source != ENTRY:
        return "only entry points import the demo"
    if source == ENTRY:
        return None
    if target == ENTRY:
        return f"{source} imports an entry point"
    if source == BASE:
        return None if target == BASE else f"base imports {target}"
    if source == SHARED:
        return None if target in (SHARED, BASE) else f"shared imports the {target} stage"
    if target in STAGES and STAGES.index(target) > STAGES.index(source):
        return f"the {source} stage imports the later {target} stage"
    if target in STAGES and target != source and target not in STAGE_NEEDS.get(source, ()):
        return f"the {source} stage imports the {target} stage, which is not among its STAGE_NEEDS"
    return None


def cycles(modules: dict[str, Path], edges: list[Edge]) -> list[tuple[list[str], list[str]]]:
    """Each strongly connected group of modules (Tarjan), counting enclosing packages, with one loop through it.

    A group can hold several loops; fixing the one shown lets the next run show the next.
    """
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for edge in edges:
        parts = edge.target.split(".")
        for depth in range(1, len(parts) + 1):
            target = ".".join(parts[:depth])
            if target in modules and not within(edge.source, target):
                graph[edge.source].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for name in sorted(graph):
        if name not in index:
            connect(name)
    return [(loop_through(sorted(group)[0], set(group), graph), sorted(group)) for group in groups]


def loop_through(start: str, group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
    paths: dict[str, list[str]] = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in sorted(graph[node] & group):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected group but has no loop")


def test_every_import_points_down() -> None:
    modules = module_files()
    violations = [f"{edge}  ({reason})" for edge in project_edges(modules) if (reason := upward_reason(edge))]
    assert not violations, f"{len(violations)} imports point up:\n" + "\n".join(violations)


def test_no_import_cycles() -> None:
    modules = module_files()
    found = cycles(modules, project_edges(modules))
    shown = [f"{' -> '.join(loop)}  (one loop of a group of {len(group)} modules)" for loop, group in found]
    assert not found, f"{len(found)} groups of modules import each other:\n" + "\n".join(shown)


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for name in module_files():
        try:
            layer_of(name)
        except AssertionError:
            unplaced.append(name)
    assert not unplaced, f"modules without a layer (add them to LAYERS): {unplaced}"


def test_the_rule_flags_an_upward_import_and_a_loop() -> None:
    up = Edge("swerl_core.snapshots", "swerl_core.train.trainer", "swerl_core/snapshots.py", 3)
    later = Edge("swerl_core.train.trainer", "swerl_core.evaluate", "swerl_core/train/trainer.py", 9)
    demo = Edge("swerl_core.train.trainer", "swerl_core.demo.world", "swerl_core/train/trainer.py", 9)
    cli = Edge("flows.demo", "swerl_core.cli.train", "flows/demo.py", 1)
    assert upward_reason(up) == "shared imports the train stage"
    assert upward_reason(later) == "the train stage imports the later evaluate stage"
    assert upward_reason(demo) == "only entry points import the demo"
    assert upward_reason(cli) == "only swerl_core.cli imports swerl_core.cli"
    unneeded = Edge("swerl_core.evaluate.x", "swerl_core.train", "x.py", 1)
    assert upward_reason(unneeded) == "the evaluate stage imports the train stage, which is not among its STAGE_NEEDS"
    assert upward_reason(Edge("swerl_core.registry.x", "swerl_core.evaluate", "x.py", 1)) is None
    modules = {name: Path(name) for name in ("swerl_core.a", "swerl_core.b", "swerl_core.c")}
    loop = [
        Edge("swerl_core.a", "swerl_core.b", "a.py", 1),
        Edge("swerl_core.b", "swerl_core.c", "b.py", 1),
        Edge("swerl_core.c", "swerl_core.a", "c.py", 1),
    ]
    members = ["swerl_core.a", "swerl_core.b", "swerl_core.c"]
    assert cycles(modules, loop) == [([*members, "swerl_core.a"], members)]
    assert cycles(modules, loop[:2]) == []
    # Importing p.z runs p/__init__, which re-exports p.x: a loop only through the package.
    packaged = {name: Path(name) for name in ("swerl_core.p", "swerl_core.p.x", "swerl_core.p.z", "swerl_core.q")}
    through_package = [
        Edge("swerl_core.p", "swerl_core.p.x", "p/__init__.py", 1),
        Edge("swerl_core.p.x", "swerl_core.q", "p/x.py", 1),
        Edge("swerl_core.q", "swerl_core.p.z", "q.py", 1),
    ]
    assert cycles(packaged, through_package)[0][0] == ["swerl_core.p", "swerl_core.p.x", "swerl_core.q", "swerl_core.p"]
