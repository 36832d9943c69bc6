"""GitHub's own closing references (``closingIssuesReferences``), fetched for many PRs per query.

One GraphQL query carries up to ``graphql_batch_size`` aliased ``pullRequest`` fields, so linking a
thousand PRs costs about ten requests. This module only asks and parses; it must never decide
whether a reference is usable (that is ingest's job) and never raises for a token that lacks
GraphQL access: the caller turns :class:`GitHubError` into "no GraphQL for this run".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from github import Github

from swerl_core.github.client import post_graphql
from swerl_core.github.errors import GitHubError
from swerl_core.github.links import IssueReference
from swerl_core.repo_names import is_repository_name

_REFS_PER_PR = 100
"""GitHub's largest page. A query's rate-limit cost counts its connections, not their ``first``, so asking
100 costs what 25 did; 25 cut the links of a PR closing more issues, silently."""

log = logging.getLogger("swerl.ingest")


def closing_issue_references(
    gh: Github, repo: str, numbers: Sequence[int], batch_size: int = 100
) -> dict[int, list[IssueReference]]:
    """For each PR number, the issues GitHub says it closes (same- or cross-repository).

    A PR GitHub could not resolve (deleted, or not visible) is left out of the answer: its references are
    unknown, which is not the same as none.
    """
    owner, _, name = repo.partition("/")
    found: dict[int, list[IssueReference]] = {}
    unique = sorted(set(numbers))
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        data = post_graphql(gh, closing_references_query(chunk), {"owner": owner, "name": name}, partial=True)
        found.update(parse_closing_references(data, repo, chunk))
    return found


def closing_references_query(numbers: Sequence[int]) -> str:
    """The GraphQL query text asking ``closingIssuesReferences`` of every PR in ``numbers``."""
    fields = "\n".join(
        f"    pr{int(n)}: pullRequest(number: {int(n)}) {{ number closingIssuesReferences(first: "
        f"{_REFS_PER_PR}) {{ totalCount nodes {{ number repository {{ nameWithOwner }} }} }} }}"
        for n in numbers
    )
    head = "query($owner: String!, $name: String!) {\n  repository(owner: $owner, name: $name) {\n"
    return f"{head}{fields}\n  }}\n}}"


def parse_closing_references(
    data: dict[str, Any], repo: str, numbers: Sequence[int]
) -> dict[int, list[IssueReference]]:
    """Read the answer of :func:`closing_references_query`; a PR answered with null is left out (unknown)."""
    repository = data.get("repository")
    if not isinstance(repository, dict):
        raise GitHubError(f"GitHub GraphQL did not return repository {repo}")
    out: dict[int, list[IssueReference]] = {}
    for number in numbers:
        node = repository.get(f"pr{int(number)}")
        if not isinstance(node, dict):
            continue
        refs: list[IssueReference] = []
        closing = node.get("closingIssuesReferences") or {}
        nodes = closing.get("nodes") or []
        total = closing.get("totalCount")
        if isinstance(total, int) and total > len(nodes):
            log.warning("%s#%s closes %d issues; GitHub's GraphQL gave the first %d", repo, number, total, len(nodes))
        for item in nodes:
            if not isinstance(item, dict) or not isinstance(item.get("number"), int):
                continue
            target = ((item.get("repository") or {}).get("nameWithOwner")) or repo
            if not is_repository_name(target) or item["number"] <= 0:
                continue  # not a repository GitHub could name: a hostile or broken answer, never stored
            if target.lower() == repo.lower():
                target = repo
            refs.append(IssueReference(target, item["number"], "graphql"))
        out[int(number)] = refs
    return out
