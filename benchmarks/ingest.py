"""API frugality of ingest: swerl's list-and-git strategy vs a per-PR collector, on one synthetic repo.

The fake GitHub server (``swerl_core.demo``) serves a synthetic repository with 2,000 pull requests
(about 95 % merged) and 1,500 issues, built once with real git history. Three runs:

1. ``swerl ingest`` on an empty database — API requests per ingested PR (target <= 0.05) and PRs/s;
2. a baseline built here, the usual per-PR collector (the SWE-bench-style task collector): list closed
   PRs, then for every merged PR fetch its diff and its commits (for the first-commit time that bounds
   hints), each issue its text links to and that issue's comments (4 requests per linked PR);
3. ``swerl ingest`` again after 50 new merged PRs — requests must follow the new PRs, not the history.

Every request is counted twice, by swerl's own meter and by the server's log; both are printed.
Usage: ``python benchmarks/ingest.py [--prs 2000] [--issues 1500] [--new 50] [--workdir DIR]``
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


def settings_for(home: Path, url: str) -> Settings:
    """Benchmark settings: the local server, no client-side throttle."""
    return load_settings(env={}, overrides={"home": home, "github.api_url": url, "github.seconds_between_requests": 0})


def run_swerl(home: Path, url: str) -> IngestResult:
    """One ``ingest`` run of the synthetic repository into ``home``."""
    settings = settings_for(home, url)
    return run(settings, IngestRequest(repos=(REPO,), token=Secret(TOKEN)))


def run_baseline(url: str) -> BaselineRun:
    """The per-PR collector: list PRs, then per merged PR its diff, commits, linked issues and comments."""
    settings = settings_for(Path(tempfile.gettempdir()), url)
    gh = connect(settings.github, Secret(TOKEN))
    started = time.monotonic()
    prs = issues = 0
    params = {"state": "closed", "sort": "updated", "direction": "desc", "per_page": 100}
    for page in paginate(gh, f"/repos/{REPO}/pulls", params):
        for pull in page:
            if not pull.get("merged_at"):
                continue
            prs += 1
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
                get_json(gh, f"/repos/{REPO}/issues/{linked.number}")
                for _ in paginate(gh, f"/repos/{REPO}/issues/{linked.number}/comments", {"per_page": 100}):
                    pass
    return BaselineRun(prs, issues, request_meter(gh).requests, time.monotonic() - started)


def main() -> None:
    """Build (or reuse) the synthetic repository, run the three measurements and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prs", type=int, default=2000, help="pull requests in the synthetic repo")
    parser.add_argument("--issues", type=int, default=1500, help="issues in the synthetic repo")
    parser.add_argument("--new", type=int, default=50, help="merged PRs added before the incremental run")
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

    with FakeGitHub(world, token=TOKEN, rate_limit=10_000_000) as server:
        home = run_root / "home"
        first = run_swerl(home, server.url)
        kept = first.prs_new + first.prs_updated
        per_pr = first.api_requests / kept
        print(
            f"swerl ingest, first run : {kept} PRs kept, {first.prs_skipped} skipped, "
            f"{first.api_requests} API requests (server log: {server.request_count}) -> "
            f"{per_pr:.4f} requests/PR (target <= {TARGET}: {'met' if per_pr <= TARGET else 'NOT met'}); "
            f"{first.duration_s:.1f}s, {kept / first.duration_s:.0f} PRs/s",
            flush=True,
        )

        server.reset_counts()
        base = run_baseline(server.url)
        base_per_pr = base.requests / base.prs
        print(
            f"baseline per-PR collector: {base.prs} PRs, {base.linked_issues} linked issues, "
            f"{base.requests} API requests (server log: {server.request_count}) -> {base_per_pr:.2f} "
            f"requests/PR; {base.seconds:.1f}s",
            flush=True,
        )
        print(f"ratio                    : {base_per_pr / per_pr:.0f}x fewer requests per PR with swerl", flush=True)

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
