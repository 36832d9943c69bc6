"""API frugality of ingest: swerl's list-and-git strategy vs a per-PR collector, on one synthetic repo.

The fake GitHub server (``swerl_core.demo``) serves a synthetic repository with 2,000 pull requests
(about 95 % merged) and 1,500 issues, built once with real git history. Three runs:

1. ``swerl ingest`` on an empty database — API requests per ingested PR (target <= 0.05) and PRs/s;
2. a baseline built here, the usual per-PR collector (the SWE-bench-style task collector): list closed
   PRs, then for every merged PR fetch its diff and its commits (for the first-commit time that bounds
   hints), each issue its text links to and that issue's comments (4 requests per linked PR);
3. ``swerl ingest`` again after 50 new merged PRs — requests must follow the new PRs, not the history;
4. with ``--relink``: an anonymous run (no GraphQL: links by keywords only, every PR marked) and then a run
   with a token into the same database — what completing the links of every PR costs. Its links must
   equal run 1's (every ``pr_issue_links`` row) before its numbers are printed.

Every request is counted twice, by swerl's own meter and by the server's log; both are printed. Before
the ratio is printed the two sides must have done the same work: the same merged pull requests (swerl's
kept ones plus those it skipped for a missing commit), and every issue the baseline linked is linked by
swerl too; both request counts are divided by that one PR count.
Usage: ``python benchmarks/ingest.py [--prs 2000] [--issues 1500] [--new 50] [--relink] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from swerl_core.config import Secret, Settings, load_settings
from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.synthetic import build_synthetic_repo, extend_synthetic_repo
from swerl_core.demo.world import World
from swerl_core.github import connect, get_json, link_issues, paginate, request_meter
from swerl_core.ingest import IngestRequest, IngestResult, run
from swerl_core.store import Store

REPO = "bench/synth"
TOKEN = "bench-token"
TARGET = 0.05


@dataclass(frozen=True)
class BaselineRun:
    """What the per-PR collector fetched and what it cost."""

    prs: int
    linked_issues: int
    requests: int
    seconds: float
    links: dict[int, set[int]]  # merged PR number -> same-repository issue numbers it links


def settings_for(home: Path, url: str) -> Settings:
    """Benchmark settings: the local server, no client-side throttle."""
    return load_settings(
        env={},
        overrides={
            "home": home,
            "github.api_url": url,
            "github.seconds_between_requests": 0,
            "github.local_clones": True,
        },
    )


def run_swerl(home: Path, url: str, token: str | None = TOKEN) -> IngestResult:
    """One ``ingest`` run of the synthetic repository into ``home`` (anonymous when ``token`` is None)."""
    settings = settings_for(home, url)
    return run(settings, IngestRequest(repos=(REPO,), token=Secret(token) if token else None))


def all_links(home: Path) -> list[tuple[object, ...]]:
    """Every ``pr_issue_links`` row, sorted."""
    with Store.open(home / "swerl.duckdb", read_only=True) as store:
        return store.connection.execute("SELECT * FROM pr_issue_links ORDER BY ALL").fetchall()


def measure_relink(run_root: Path, url: str, server: FakeGitHub, reference: Path) -> None:
    """Anonymous run, then a token run into the same database; its links must equal ``reference``'s."""
    home = run_root / "home-anonymous"
    anonymous = run_swerl(home, url, token=None)
    marked = anonymous.prs_new
    if anonymous.status != "ok" or anonymous.repos[0].links_missing_source != "graphql":
        raise SystemExit(f"the anonymous run did not finish keyword-only ({anonymous.status}: {anonymous.message})")
    server.reset_counts()
    completed = run_swerl(home, url)
    relinked = completed.repos[0].prs_relinked
    if relinked != marked or completed.prs_new or completed.prs_updated:
        raise SystemExit(f"the token run re-linked {relinked} of the {marked} marked PRs; no numbers")
    if all_links(home) != all_links(reference):
        raise SystemExit("after the token run the links differ from one token run's; no numbers")
    print(
        f"re-link after anonymous : anonymous run {anonymous.api_requests} API requests; then with a token "
        f"{relinked} PRs re-linked with {completed.api_requests} API requests (server log: {server.request_count}, "
        f"GraphQL {sum(1 for r in server.requests if r.path == '/graphql')}) -> "
        f"{completed.api_requests / max(relinked, 1):.4f} requests/re-linked PR; links equal one token run's",
        flush=True,
    )


def run_baseline(url: str) -> BaselineRun:
    """The per-PR collector: list PRs, then per merged PR its diff, commits, linked issues and comments."""
    settings = settings_for(Path(tempfile.gettempdir()), url)
    gh = connect(settings.github, Secret(TOKEN))
    started = time.monotonic()
    prs = issues = 0
    links: dict[int, set[int]] = {}
    params = {"state": "closed", "sort": "updated", "direction": "desc", "per_page": 100}
    for page in paginate(gh, f"/repos/{REPO}/pulls", params):
        for pull in page:
            if not pull.get("merged_at"):
                continue
            prs += 1
            links[pull["number"]] = set()
            gh.requester.requestJsonAndCheck(
                "GET", f"/repos/{REPO}/pulls/{pull['number']}", headers={"Accept": "application/vnd.github.v3.diff"}
            )
            # Hints are comments made before the PR's first commit: the commit list gives that time.
            for _ in paginate(gh, f"/repos/{REPO}/pulls/{pull['number']}/commits", {"per_page": 100}):
                pass
            for linked in link_issues(REPO, pull.get("title"), pull.get("body")):
                if linked.repo != REPO:
                    continue
                issues += 1
                _, issue = get_json(gh, f"/repos/{REPO}/issues/{linked.number}")
                if isinstance(issue, dict) and not issue.get("pull_request"):
                    links[pull["number"]].add(linked.number)
                for _ in paginate(gh, f"/repos/{REPO}/issues/{linked.number}/comments", {"per_page": 100}):
                    pass
    return BaselineRun(prs, issues, request_meter(gh).requests, time.monotonic() - started, links)


def swerl_links(home: Path) -> dict[int, set[int]]:
    """What swerl stored: every merged PR it covered (kept, or skipped for a missing commit) and its issue links."""
    with Store.open(home / "swerl.duckdb", read_only=True) as store:
        con = store.connection
        covered = con.execute(
            "SELECT number FROM pull_requests WHERE repo = ? UNION SELECT number FROM skipped_prs "
            "WHERE repo = ? AND reason NOT IN ('not_merged', 'draft')",
            [REPO, REPO],
        ).fetchall()
        linked = con.execute(
            "SELECT pr_number, issue_number FROM pr_issue_links WHERE repo = ? AND issue_repo = ? AND kind = 'issue'",
            [REPO, REPO],
        ).fetchall()
    out: dict[int, set[int]] = {number: set() for (number,) in covered}
    for number, issue in linked:
        out[number].add(issue)
    return out


def same_work(swerl: dict[int, set[int]], base: BaselineRun) -> str | None:
    """Why the two runs did not do the same work, or None when they did."""
    if set(swerl) != set(base.links):
        only = sorted(set(swerl) ^ set(base.links))[:5]
        return f"different merged PRs ({len(swerl)} vs {len(base.links)}; e.g. {only})"
    missed = sorted(n for n, issues in base.links.items() if not issues <= swerl[n])
    if missed:
        return f"swerl lacks links the baseline found, e.g. PRs {missed[:5]}"
    return None


def main() -> None:
    """Build (or reuse) the synthetic repository, run the three measurements and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prs", type=int, default=2000, help="pull requests in the synthetic repo")
    parser.add_argument("--issues", type=int, default=1500, help="issues in the synthetic repo")
    parser.add_argument("--new", type=int, default=50, help="merged PRs added before the incremental run")
    parser.add_argument("--relink", action="store_true", help="also measure an anonymous run followed by a token run")
    parser.add_argument("--workdir", type=Path, help="keep the synthetic build here (default: a temp dir)")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="swerl-bench-ingest-"))
    started = time.monotonic()
    built = build_synthetic_repo(work / "build", REPO, n_prs=args.prs, n_issues=args.issues)
    build_s = time.monotonic() - started
    run_root = work / "run"
    shutil.rmtree(run_root, ignore_errors=True)
    world = World(built.bare_path.parent.parent, [built]).copy_to(run_root / "world")  # extended below
    repo = world.repo(REPO)
    merged = sum(1 for p in repo.pulls.values() if p.merged)
    print(
        f"synthetic repo {REPO}: {len(repo.pulls)} PRs ({merged} merged), {len(repo.issues)} issues "
        f"(build {build_s:.1f}s)",
        flush=True,
    )

    with FakeGitHub(world, token=TOKEN, rate_limit=10_000_000, anonymous_limit=10_000_000) as server:
        home = run_root / "home"
        first = run_swerl(home, server.url)
        kept = first.prs_new + first.prs_updated
        covered = swerl_links(home)
        per_pr = first.api_requests / len(covered)
        print(
            f"swerl ingest, first run : {kept} PRs kept, {first.prs_skipped} skipped, "
            f"{first.api_requests} API requests (server log: {server.request_count}) -> "
            f"{per_pr:.4f} requests/merged PR (target <= {TARGET}: {'met' if per_pr <= TARGET else 'NOT met'}); "
            f"{first.duration_s:.1f}s, {kept / first.duration_s:.0f} PRs/s",
            flush=True,
        )

        server.reset_counts()
        base = run_baseline(server.url)
        base_per_pr = base.requests / len(base.links)
        print(
            f"baseline per-PR collector: {base.prs} PRs, {base.linked_issues} linked issues, "
            f"{base.requests} API requests (server log: {server.request_count}) -> {base_per_pr:.2f} "
            f"requests/PR; {base.seconds:.1f}s",
            flush=True,
        )
        mismatch = same_work(covered, base)
        if mismatch is not None:
            raise SystemExit(f"the two runs did different work: {mismatch}; no ratio")
        linked = sum(1 for issues in base.links.values() if issues)
        print(
            f"same work                : the same {len(covered)} merged PRs; every issue link of the baseline "
            f"({linked} PRs) is in swerl's store too ({sum(1 for v in covered.values() if v)} PRs linked)",
            flush=True,
        )
        print(
            f"ratio                    : {base_per_pr / per_pr:.0f}x fewer requests per merged PR with swerl",
            flush=True,
        )

        if args.relink:
            measure_relink(run_root, server.url, server, home)

        extend_synthetic_repo(repo, n_new_prs=args.new)
        server.reset_counts()
        second = run_swerl(home, server.url)
        new = second.prs_new
        print(
            f"incremental (+{args.new} PRs)   : {new} new, {second.prs_updated} updated, "
            f"{second.api_requests} API requests (server log: {server.request_count}) -> "
            f"{second.api_requests / max(new, 1):.3f} requests/new PR; {second.duration_s:.1f}s",
            flush=True,
        )
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
