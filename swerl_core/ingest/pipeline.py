"""``ingest``: fresh merged pull requests, their issues and their code, from GitHub and git into DuckDB.

The frugal strategy: PRs are listed ``state=closed, sort=updated, direction=desc`` (100 a page) down
to the repository's watermark; issues and repo-wide issue comments are listed oldest update first,
each page asked from the newest ``since`` seen (:mod:`swerl_core.ingest.listing`: an edit made while
they are listed skips nothing), one transaction and watermark step a page, and give bodies and
comments in bulk; a single issue is fetched only when a PR links one that no listing
or earlier run brought in; GitHub's own closing references come from GraphQL, many PRs per query;
everything about code comes from the git mirror. PRs are written in batches, oldest update first,
each batch in one transaction that also advances the watermark, so a crash or a rate-limit stop
leaves exactly the committed PRs and a rerun continues from there. A PR linked without GraphQL (no
token, a token without GraphQL access, or a PR GitHub's GraphQL could not resolve) is stored with
``links_missing_source='graphql'``; the next run that can ask GraphQL adds those PRs to its batched
queries, links them again from their stored text and clears the mark, so runs converge on the links one
complete run would store.

This module orchestrates; it must never hold the token anywhere but the client, and never write a
PR partially.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from github import Github

from swerl_core.config import GitHubConfig, Secret, Settings
from swerl_core.errors import SwerlError
from swerl_core.git import Mirror, mirror_path, object_sizes
from swerl_core.github import (
    GitHubError,
    IssueReference,
    RateLimited,
    RequestMeter,
    closing_issue_references,
    closing_references,
    connect,
    get_json,
    merge_references,
    paginate,
)
from swerl_core.ingest.code import (
    CodeSkip,
    PullCode,
    blob_records,
    blob_shas,
    file_records,
    pulls_code,
)
from swerl_core.ingest.errors import IngestError
from swerl_core.ingest.listing import resume_since, updated_pages
from swerl_core.ingest.payloads import (
    PullSummary,
    is_pull_request,
    parse_comment,
    parse_issue,
    parse_pull,
    parse_time,
    repository_of,
)
from swerl_core.ingest.scope import requested_repos
from swerl_core.progress import ProgressCallback, ProgressReporter
from swerl_core.repo_names import UnsafeNameError, check_clone_url, git_host, repository_name
from swerl_core.store import (
    CommentRecord,
    IssueRecord,
    LinkRecord,
    PullRequestRecord,
    RepoRecord,
    RunTotals,
    SkippedPR,
    Store,
    UnlinkedPull,
)

log = logging.getLogger("swerl.ingest")


@dataclass(frozen=True)
class RepoIngest:
    """What one repository's ingest did."""

    repo: str
    renamed_from: str | None = None
    prs_new: int = 0
    prs_updated: int = 0
    prs_unchanged: int = 0
    skipped_by_reason: Mapping[str, int] = field(default_factory=dict)
    issues_upserted: int = 0
    comments_upserted: int = 0
    watermark: datetime | None = None
    stopped: str | None = None
    prs_relinked: int = 0  # stored PRs whose links were completed from a source an earlier run lacked
    links_missing_source: str | None = None  # a link source this run could not ask; its PRs are marked

    @property
    def prs_skipped(self) -> int:
        """Pull requests not kept, all reasons together."""
        return sum(self.skipped_by_reason.values())


@dataclass(frozen=True)
class IngestResult:
    """The outcome of one :func:`ingest` call (also written to ``ingest_runs``)."""

    run_id: str
    status: str  # ok | stopped (rate limit; resume later)
    repos: tuple[RepoIngest, ...]
    prs_new: int
    prs_updated: int
    prs_skipped: int
    skipped_by_reason: Mapping[str, int]
    issues_upserted: int
    api_requests: int
    rate_limit_waits: int
    rate_limit_wait_s: float
    duration_s: float
    message: str | None = None

    @property
    def api_requests_per_pr(self) -> float:
        """API requests per PR written (new or updated); the frugality measure."""
        written = self.prs_new + self.prs_updated
        return self.api_requests / written if written else float(self.api_requests)


def ingest(
    store: Store,
    settings: Settings,
    token: Secret | None,
    *,
    repos: Sequence[str] | None = None,
    since: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> IngestResult:
    """Ingest ``repos`` (default ``settings.ingest.repos``) into ``store``; see the module docstring.

    ``since`` (default ``settings.ingest.since``) bounds the merge time on a repository's first run.
    Raises :class:`IngestError` with a one-line reason for a bad token, an unknown or private
    repository (nothing is written then) or a failure GitHub or git does not recover from. A rate
    limit longer than ``github.max_rate_limit_wait_s`` ends the run cleanly with ``status="stopped"``.
    One ingest runs per database at a time (``store.ingest.lock()``); the store is written in short
    batches, so other stages share it meanwhile.
    """
    with store.ingest.lock():
        return _ingest(store, settings, token, repos, since, progress)


def _ingest(
    store: Store,
    settings: Settings,
    token: Secret | None,
    repos: Sequence[str] | None,
    since: datetime | None,
    progress: ProgressCallback | None,
) -> IngestResult:
    names = requested_repos(settings, repos)
    since = since if since is not None else settings.ingest.since
    started = time.monotonic()
    meter = RequestMeter()
    gh = connect(settings.github, token, meter)
    say = ProgressReporter("ingest", progress)
    # Kept in the run's row and said once, in the result; the PRs are marked and a run with a token re-links them.
    anonymous = settings.github.use_graphql and not token
    try:
        resolved = [_resolve_repo(gh, repository_name(name), settings.github) for name in names]
    except RateLimited as exc:
        raise IngestError(f"{exc} (before anything was written)") from None
    except (GitHubError, IngestError, UnsafeNameError) as exc:
        raise IngestError(str(exc)) from None
    run_id = store.ingest.start_run([r.name for r in resolved])
    outcomes: list[RepoIngest] = []
    status, message = "ok", _ANONYMOUS if anonymous else None
    try:
        for repo in resolved:
            job = _RepoJob(store, settings, token, gh, repo, run_id, since, say)
            try:
                job.run()
            except RateLimited as exc:
                status, message = "stopped", f"{repo.name}: {exc}; rerun to continue"
                job.stopped = str(exc)
                outcomes.append(job.outcome())
                break
            except SwerlError as exc:
                outcomes.append(job.outcome())
                status, message = "failed", f"{repo.name}: {exc}"
                raise IngestError(message) from None
            outcomes.append(job.outcome())
    except BaseException as exc:
        if status != "failed":
            status, message = "failed", f"interrupted: {type(exc).__name__}"
        try:
            store.ingest.finish_run(run_id, _totals(status, outcomes, meter, started, message))
        except Exception as record_failure:  # the original failure matters more; say why the row is stale
            log.warning("could not record the end of run %s: %s", run_id, record_failure)
        raise
    if status == "ok" and not anonymous:
        message = _links_note(outcomes)
    store.ingest.finish_run(run_id, _totals(status, outcomes, meter, started, message))
    return _result(run_id, status, outcomes, meter, started, message)


def _resolve_repo(gh: Github, name: str, config: GitHubConfig) -> RepoRecord:
    try:
        _, data = get_json(gh, f"/repos/{name}")
    except GitHubError as exc:
        if exc.status == 404:
            raise GitHubError(
                f"repository {name} not found on GitHub (404: private, renamed away or misspelled)",
                status=404,
            ) from None
        raise
    if not isinstance(data, dict) or not isinstance(data.get("full_name"), str) or not data.get("clone_url"):
        raise IngestError(f"GitHub's answer for repository {name} has no full_name/clone_url")
    full_name = repository_name(data["full_name"], f"GitHub's full_name for {name}")
    clone_url = check_clone_url(data["clone_url"], config.api_url, config.local_clones)
    return RepoRecord(
        name=full_name,
        github_id=data.get("id") if isinstance(data.get("id"), int) else None,
        clone_url=clone_url,
        default_branch=data["default_branch"] if isinstance(data.get("default_branch"), str) else None,
        renamed_from=name if full_name.lower() != name.lower() else None,
    )


class _RepoJob:
    """One repository's ingest within a run (state shared by its steps)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        token: Secret | None,
        gh: Github,
        repo: RepoRecord,
        run_id: str,
        since: datetime | None,
        say: ProgressReporter,
    ) -> None:
        self.store, self.settings, self.token, self.gh = store, settings, token, gh
        self.repo = repo
        self.name = repo.name
        self.run_id = run_id
        self.since = since
        self.say = say
        self.mirror = Mirror(mirror_path(settings.mirrors_dir, repo.name))
        self.per_page = settings.github.per_page
        self.pr_numbers: set[int] = set()
        self.unresolvable: dict[int, str] = {}  # numbers GitHub could not show as issues: missing/transferred
        self.use_graphql = settings.github.use_graphql and bool(token)
        self.prs_new = self.prs_updated = self.prs_unchanged = self.prs_relinked = 0
        self.skipped: Counter[str] = Counter()
        self.issues_upserted = self.comments_upserted = 0
        self.stopped: str | None = None

    def outcome(self) -> RepoIngest:
        """The counters so far, as a :class:`RepoIngest`."""
        return RepoIngest(
            repo=self.name,
            renamed_from=self.repo.renamed_from,
            prs_new=self.prs_new,
            prs_updated=self.prs_updated,
            prs_unchanged=self.prs_unchanged,
            skipped_by_reason=dict(sorted(self.skipped.items())),
            issues_upserted=self.issues_upserted,
            comments_upserted=self.comments_upserted,
            watermark=self.store.ingest.watermark(self.name, "pulls"),
            stopped=self.stopped,
            prs_relinked=self.prs_relinked,
            links_missing_source=self.links_missing_source,
        )

    @property
    def links_missing_source(self) -> str | None:
        """The link source this run wanted but could not ask (``graphql``), marked on every PR it writes."""
        return "graphql" if self.settings.github.use_graphql and not self.use_graphql else None

    def run(self) -> None:
        """Mirror, list, link, compute and commit this repository's new PRs."""
        first_run = self.store.ingest.watermark(self.name, "pulls") is None
        lower = self.store.ingest.watermark(self.name, "pulls") or self.since
        self.say(f"{self.name}: listing pull requests" + (f" updated since {lower:%Y-%m-%d %H:%M}" if lower else ""))
        pulls = self._list_pulls(lower)
        self.pr_numbers.update(p.number for p in pulls)
        self.pr_numbers.update(self.store.ingest.pull_request_numbers(self.name))
        self.say(f"{self.name}: fetching git mirror")
        self.mirror.sync(self.repo.clone_url, self.token, _token_hosts(self.settings.github.api_url))
        self.store.ingest.upsert_repo(
            RepoRecord(
                self.name,
                self.repo.github_id,
                self.repo.clone_url,
                self.repo.default_branch,
                self.repo.renamed_from,
                str(self.mirror.path),
            )
        )
        self._sync_issues(self.since if first_run else None)
        self._sync_comments(self.since if first_run else None)
        versions = self.store.ingest.pr_versions(self.name)
        work = []
        for pull in pulls:
            if versions.get(pull.number) == pull.updated_at:
                self.prs_unchanged += 1
            elif first_run and self.since and pull.merged_at and pull.merged_at < self.since:
                continue  # merged before the requested window: not ours to keep or skip
            else:
                work.append(pull)
        work.sort(key=lambda p: (p.updated_at, p.number))
        self.say(
            f"{self.name}: {len(work)} new or updated pull requests ({self.prs_unchanged} unchanged)", 0, len(work)
        )
        missing = self.mirror.missing_commits(
            sha for p in work if p.merged_at and not p.draft for sha in (p.base_sha, p.head_sha)
        )
        unlinked = self._unlinked({p.number for p in work})
        merged = [p.number for p in work if p.merged_at and not p.draft]
        # One set of GraphQL queries serves the new PRs and the ones an earlier run could not link fully.
        graphql = self._graphql_references(merged + [u.number for u in unlinked])
        size = self.settings.ingest.batch_size
        for start in range(0, len(work), size):
            self._commit_batch(work[start : start + size], missing, graphql)
            done = min(start + size, len(work))
            self.say(f"{self.name}: {done}/{len(work)} pull requests", done, len(work))
        answered = [u for u in unlinked if u.number in graphql]  # GitHub may still fail to resolve a PR
        if answered and self.use_graphql:
            self._relink(answered, graphql)

    # -- listings --------------------------------------------------------------------------------

    def _list_pulls(self, lower: datetime | None) -> list[PullSummary]:
        seen: dict[int, PullSummary] = {}
        params = {"state": "closed", "sort": "updated", "direction": "desc", "per_page": self.per_page}
        for page in paginate(self.gh, f"/repos/{self.name}/pulls", params):
            for item in page:
                pull = parse_pull(item)
                if lower is not None and pull.updated_at < lower:
                    return list(seen.values())
                seen.setdefault(pull.number, pull)
        return list(seen.values())

    def _sync_issues(self, first_since: datetime | None) -> None:
        since = resume_since(self.store.ingest.watermark(self.name, "issues")) or first_since
        params = {"state": "all", "per_page": self.per_page}
        for page in updated_pages(self.gh, f"/repos/{self.name}/issues", params, since):
            issues: list[IssueRecord] = []
            for item in page:
                if is_pull_request(item):
                    number = item.get("number")
                    if isinstance(number, int):
                        self.pr_numbers.add(number)
                else:
                    issues.append(parse_issue(self.name, item))
            newest = max(_updated(item) for item in page)
            with self.store.transaction():
                self.issues_upserted += self.store.ingest.upsert_issues(issues)
                self.store.ingest.advance_watermark(self.name, "issues", newest)

    def _sync_comments(self, first_since: datetime | None) -> None:
        since = resume_since(self.store.ingest.watermark(self.name, "comments")) or first_since
        params = {"per_page": self.per_page}
        for page in updated_pages(self.gh, f"/repos/{self.name}/issues/comments", params, since):
            comments = [parse_comment(self.name, item) for item in page]
            with self.store.transaction():
                self.comments_upserted += self.store.ingest.upsert_comments(comments)
                self.store.ingest.advance_watermark(self.name, "comments", max(c.updated_at for c in comments))

    def _graphql_references(self, numbers: list[int]) -> dict[int, list[IssueReference]]:
        if not self.use_graphql or not numbers:
            return {}
        try:
            return closing_issue_references(self.gh, self.name, numbers, self.settings.github.graphql_batch_size)
        except RateLimited:
            raise
        except GitHubError as exc:
            if exc.status not in _NO_GRAPHQL_ACCESS:
                # Committing these PRs without GitHub's links would lose them for good: a rerun sees the
                # PRs unchanged. Nothing of them is written yet, so failing here lets a rerun converge.
                raise IngestError(
                    f"GraphQL closing references failed ({exc}); no pull request was written, rerun to retry "
                    "(or set github.use_graphql=false to link by keywords only)"
                ) from None
            # A token without GraphQL access (or a server without it) links by keywords, every run alike.
            log.warning("%s: GraphQL closing references unavailable (%s); using keywords only", self.name, exc)
            self.use_graphql = False
            return {}

    # -- completing links an earlier run could not ------------------------------------------------

    def _unlinked(self, rewritten: set[int]) -> list[UnlinkedPull]:
        """Stored PRs marked as linked without GraphQL, when this run can ask it (``rewritten`` are redone anyway)."""
        if not self.use_graphql:
            return []
        return [u for u in self.store.ingest.unlinked_pulls(self.name, "graphql") if u.number not in rewritten]

    def _relink(self, unlinked: Sequence[UnlinkedPull], graphql: Mapping[int, list[IssueReference]]) -> None:
        """Link ``unlinked`` PRs again from their stored text and GraphQL's answer; clear their mark.

        The same steps as a new PR's links (classify, fetch unknown issues and their comments), so the
        result equals what one run that could ask every source would have stored.
        """
        self.say(f"{self.name}: completing the links of {len(unlinked)} pull requests linked without GraphQL")
        size = self.settings.ingest.batch_size
        for start in range(0, len(unlinked), size):
            chunk = unlinked[start : start + size]
            references = {
                u.number: _text_references(self.name, u.title, u.body, u.commit_messages) + graphql.get(u.number, [])
                for u in chunk
            }
            kinds, fetched = self._classify(references.values())
            links = {number: self._link_records(refs, kinds) for number, refs in references.items()}
            linked_issues = {ln.issue_number for ls in links.values() for ln in ls if ln.kind == "issue"}
            comments = self._fill_comment_gaps(linked_issues, fetched)
            with self.store.transaction():
                self.issues_upserted += self.store.ingest.upsert_issues(fetched)
                self.comments_upserted += self.store.ingest.upsert_comments(comments)
                self.store.ingest.relink_pull_requests(self.name, links)
            self.prs_relinked += len(chunk)

    # -- one batch -------------------------------------------------------------------------------

    def _commit_batch(
        self, batch: Sequence[PullSummary], missing: set[str], graphql: Mapping[int, list[IssueReference]]
    ) -> None:
        skips: list[SkippedPR] = []
        candidates: list[PullSummary] = []
        for pull in batch:
            reason = _skip_reason(pull, missing)
            if reason:
                skips.append(SkippedPR(self.name, pull.number, reason, pull.updated_at, None))
            else:
                candidates.append(pull)
        code = pulls_code(
            self.mirror.path,
            [(p.number, p.base_sha, p.head_sha) for p in candidates],
            self.settings.ingest.git_workers,
        )
        kept: list[tuple[PullSummary, PullCode]] = []
        for pull in candidates:
            result = code[pull.number]
            if isinstance(result, CodeSkip):
                skips.append(SkippedPR(self.name, pull.number, result.reason, pull.updated_at, result.detail))
            else:
                kept.append((pull, result))
        references = {pull.number: self._references(pull, pc, graphql.get(pull.number, [])) for pull, pc in kept}
        kinds, fetched = self._classify(references.values())
        links = {number: self._link_records(refs, kinds) for number, refs in references.items()}
        linked_issues = {ln.issue_number for ls in links.values() for ln in ls if ln.kind == "issue"}
        comments = self._fill_comment_gaps(linked_issues, fetched)
        all_files = [f for _, pc in kept for f in pc.diff.files]
        shas = blob_shas(all_files)
        sizes = object_sizes(self.mirror.path, shas)
        wanted = self.store.ingest.missing_blobs(shas)
        blobs = blob_records(self.mirror.path, all_files, wanted, sizes, self.settings.ingest.max_blob_bytes)
        records = [
            self._record(pull, pc, sizes, links[pull.number], self._lacking(pull.number, graphql)) for pull, pc in kept
        ]
        with self.store.transaction():
            self.issues_upserted += self.store.ingest.upsert_issues(fetched)
            self.comments_upserted += self.store.ingest.upsert_comments(comments)
            self.store.ingest.insert_blobs(blobs)
            new, updated = self.store.ingest.write_pull_requests(records, self.run_id)
            self.store.ingest.record_skips(skips, self.run_id)
            self.store.ingest.advance_watermark(self.name, "pulls", max(p.updated_at for p in batch))
        self.prs_new += new
        self.prs_updated += updated
        self.skipped.update(s.reason for s in skips)

    def _references(self, pull: PullSummary, code: PullCode, graphql: list[IssueReference]) -> list[IssueReference]:
        messages = [commit.message for commit in code.commits]
        return _text_references(self.name, pull.title, pull.body, messages) + list(graphql)

    def _classify(self, references: Iterable[list[IssueReference]]) -> tuple[dict[int, str], list[IssueRecord]]:
        """What each same-repository number is; fetches (one request each) only numbers nobody knows."""
        numbers = {r.number for refs in references for r in refs if r.repo == self.name}
        stored = self.store.ingest.issue_numbers(self.name, numbers)
        kinds: dict[int, str] = {}
        fetched: list[IssueRecord] = []
        for number in sorted(numbers):
            if number in self.pr_numbers:
                kinds[number] = "pull_request"
            elif number in stored:
                kinds[number] = "issue"
            elif number in self.unresolvable:
                kinds[number] = self.unresolvable[number]
            else:
                kind, issue = self._fetch_issue(number)
                kinds[number] = kind
                if issue is not None:
                    fetched.append(issue)
                elif kind == "pull_request":
                    self.pr_numbers.add(number)
                else:
                    self.unresolvable[number] = kind
        return kinds, fetched

    def _fetch_issue(self, number: int) -> tuple[str, IssueRecord | None]:
        try:
            _, data = get_json(self.gh, f"/repos/{self.name}/issues/{number}")
        except RateLimited:
            raise
        except GitHubError as exc:
            if exc.status in (404, 410):
                return "missing", None  # deleted (410) or never visible (404)
            if exc.status == 301:
                return "transferred", None
            raise
        if not isinstance(data, dict):
            raise IngestError(f"GitHub answered issue #{number} of {self.name} with something else")
        if is_pull_request(data):
            return "pull_request", None
        owner = repository_of(data)
        if owner is not None and owner.lower() != self.name.lower():
            return "transferred", None  # GitHub redirected us to the repository it moved to
        return "issue", parse_issue(self.name, data)

    def _link_records(self, refs: list[IssueReference], kinds: Mapping[int, str]) -> tuple[LinkRecord, ...]:
        return tuple(
            LinkRecord(
                linked.repo,
                linked.number,
                "cross_repo" if linked.repo != self.name else kinds[linked.number],
                linked.sources,
            )
            for linked in merge_references(refs)
        )

    def _fill_comment_gaps(self, issue_numbers: set[int], fetched: list[IssueRecord]) -> list[CommentRecord]:
        """Comments of linked issues that the repo-wide listing did not bring (older than ``since``)."""
        gaps = set(self.store.ingest.issues_missing_comments(self.name, issue_numbers))
        stored = self.store.ingest.comment_counts(self.name, [i.number for i in fetched])
        gaps |= {i.number for i in fetched if stored.get(i.number, 0) < i.comments_count}
        comments: list[CommentRecord] = []
        for number in sorted(gaps):
            params = {"per_page": self.per_page}
            for page in paginate(self.gh, f"/repos/{self.name}/issues/{number}/comments", params):
                comments += [parse_comment(self.name, item) for item in page]
        return comments

    def _lacking(self, number: int, graphql: Mapping[int, list[IssueReference]]) -> str | None:
        """The link source PR ``number`` was linked without: none asked, or GitHub could not resolve this PR."""
        if self.links_missing_source is not None:
            return self.links_missing_source
        return "graphql" if self.use_graphql and number not in graphql else None

    def _record(
        self,
        pull: PullSummary,
        code: PullCode,
        sizes: dict[str, int],
        links: tuple[LinkRecord, ...],
        lacking: str | None,
    ) -> PullRequestRecord:
        first = min((c.authored_at for c in code.commits), default=None)
        assert pull.merged_at is not None
        return PullRequestRecord(
            repo=self.name,
            number=pull.number,
            github_id=pull.github_id,
            title=pull.title,
            body=pull.body,
            author_login=pull.author_login,
            author_type=pull.author_type,
            author_is_bot=pull.author_is_bot,
            labels=pull.labels,
            created_at=pull.created_at,
            updated_at=pull.updated_at,
            closed_at=pull.closed_at,
            merged_at=pull.merged_at,
            base_ref=pull.base_ref,
            head_ref=pull.head_ref,
            base_sha=pull.base_sha,
            head_sha=pull.head_sha,
            merge_commit_sha=pull.merge_commit_sha,
            merge_base_sha=code.merge_base_sha,
            first_commit_at=first,
            commit_messages=tuple(c.message for c in code.commits),
            code_patch=code.diff.code_patch,
            test_patch=code.diff.test_patch,
            files=file_records(code.diff, sizes),
            links=links,
            links_missing_source=lacking,
        )


def _text_references(repo: str, title: str, body: str, messages: Iterable[str]) -> list[IssueReference]:
    """Closing keywords in a PR's title, body and commit messages, in that order."""
    refs = closing_references(title, repo, "title") + closing_references(body, repo, "body")
    for message in messages:
        refs += closing_references(message, repo, "commit")
    return refs


def _links_note(outcomes: Sequence[RepoIngest]) -> str | None:
    """The run's message when a repository's PRs were linked without a source they need."""
    lacking = [o.repo for o in outcomes if o.links_missing_source]
    if not lacking:
        return None
    return (
        f"{', '.join(lacking)}: GraphQL closing references unavailable to this token; linked by keywords only, "
        "marked to be completed by a run that can ask GraphQL"
    )


_ANONYMOUS = (  # a run's message starting "no token:" marks its PRs for re-linking (store/migrations.py)
    "no token: pull requests were linked to issues by closing keywords only (GitHub's own links need a token); "
    "curate leaves the others out until an ingest with GITHUB_TOKEN set completes them"
)
_NO_GRAPHQL_ACCESS = (401, 403, 404)
"""GraphQL answers that mean "this token or server has no GraphQL", not a transient failure."""


def _skip_reason(pull: PullSummary, missing: set[str]) -> str | None:
    if pull.draft:
        return "draft"  # a closed draft is also unmerged; "draft" is the more telling reason
    if pull.merged_at is None:
        return "not_merged"
    if pull.head_sha in missing:
        return "head_commit_missing"
    if pull.base_sha in missing:
        return "base_commit_missing"
    return None


def _token_hosts(api_url: str) -> set[str]:
    """Hosts that may receive the token on git fetches: github.com for the public API, else the API host."""
    scheme, host = git_host(api_url)
    if not host:
        return set()
    return {host, f"http://{host}"} if scheme == "http" else {host}


def _updated(item: Mapping[str, object]) -> datetime:
    return parse_time(item.get("updated_at"), "updated_at")


def _totals(
    status: str, outcomes: list[RepoIngest], meter: RequestMeter, started: float, message: str | None
) -> RunTotals:
    skipped: Counter[str] = Counter()
    for o in outcomes:
        skipped.update(o.skipped_by_reason)
    return RunTotals(
        status=status,
        prs_new=sum(o.prs_new for o in outcomes),
        prs_updated=sum(o.prs_updated for o in outcomes),
        prs_skipped=sum(skipped.values()),
        skipped_by_reason=dict(sorted(skipped.items())),
        issues_upserted=sum(o.issues_upserted for o in outcomes),
        api_requests=meter.requests,
        rate_limit_waits=meter.rate_limit_waits,
        rate_limit_wait_s=round(meter.rate_limit_wait_s, 3),
        duration_s=round(time.monotonic() - started, 3),
        message=message,
    )


def _result(
    run_id: str,
    status: str,
    outcomes: list[RepoIngest],
    meter: RequestMeter,
    started: float,
    message: str | None,
) -> IngestResult:
    totals = _totals(status, outcomes, meter, started, message)
    return IngestResult(
        run_id=run_id,
        status=status,
        repos=tuple(outcomes),
        prs_new=totals.prs_new,
        prs_updated=totals.prs_updated,
        prs_skipped=totals.prs_skipped,
        skipped_by_reason=totals.skipped_by_reason,
        issues_upserted=totals.issues_upserted,
        api_requests=totals.api_requests,
        rate_limit_waits=totals.rate_limit_waits,
        rate_limit_wait_s=totals.rate_limit_wait_s,
        duration_s=totals.duration_s,
        message=message,
    )
