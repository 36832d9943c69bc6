"""Talking to GitHub (or GitHub Enterprise, or the local sample server) through PyGithub.

Client construction with counted, bounded retries; issue linking from text; GraphQL closing
references. Nothing about code lives here: code comes from git.
"""

from swerl_core.github.client import (
    MeteredRetry,
    RequestMeter,
    connect,
    describe_failure,
    get_json,
    get_page,
    next_link,
    paginate,
    post_graphql,
    request_meter,
)
from swerl_core.github.errors import GitHubError, RateLimited
from swerl_core.github.graphql import closing_issue_references, closing_references_query
from swerl_core.github.links import (
    IssueReference,
    LinkedIssue,
    closing_references,
    link_issues,
    merge_references,
    strip_html_comments,
)

__all__ = [
    "GitHubError",
    "IssueReference",
    "LinkedIssue",
    "MeteredRetry",
    "RateLimited",
    "RequestMeter",
    "closing_issue_references",
    "closing_references",
    "closing_references_query",
    "connect",
    "describe_failure",
    "get_json",
    "get_page",
    "link_issues",
    "merge_references",
    "next_link",
    "paginate",
    "post_graphql",
    "request_meter",
    "strip_html_comments",
]
