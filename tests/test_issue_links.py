"""Issue linking from PR text: GitHub's closing keywords, references, HTML comments, cross-repo refs."""

from __future__ import annotations

import pytest

from swerl_core.github.graphql import closing_references_query, parse_closing_references
from swerl_core.github.links import IssueReference, closing_references, link_issues, strip_html_comments

REPO = "acme/textkit"


@pytest.mark.parametrize(
    "keyword",
    ["close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved"],
)
def test_every_closing_keyword_links_in_any_case(keyword: str) -> None:
    for variant in (keyword, keyword.upper(), keyword.capitalize()):
        refs = closing_references(f"This {variant} #12 for good.", REPO, "body")
        assert [(r.repo, r.number) for r in refs] == [(REPO, 12)], variant


@pytest.mark.parametrize("text", ["Fixes: #7", "fixes:#7", "Fixes :  #7", "FIXES:\t#7"])
def test_an_optional_colon_is_accepted(text: str) -> None:
    assert [r.number for r in closing_references(text, REPO, "body")] == [7]


def test_a_reference_without_a_keyword_does_not_link() -> None:
    assert closing_references("See #12 and related to #13; refs #14", REPO, "body") == []


def test_words_that_merely_contain_a_keyword_do_not_link() -> None:
    text = "prefixes #3, suffixed #4, unresolved #5, enclosed #6, hotfix #7, fix-up #8"
    assert closing_references(text, REPO, "body") == []


def test_owner_name_reference_to_another_repo_is_recorded_as_cross_repo() -> None:
    refs = closing_references("Fixes other/lib#5", REPO, "body")
    assert refs == [IssueReference("other/lib", 5, "body")]


def test_owner_name_reference_to_the_same_repo_is_normalised_to_it() -> None:
    refs = closing_references("Closes ACME/TextKit#9", REPO, "body")
    assert refs == [IssueReference(REPO, 9, "body")]


def test_full_issue_urls_link_and_keep_their_repository() -> None:
    text = "Resolves https://github.com/acme/textkit/issues/21 and fixes https://github.com/other/lib/issues/3"
    refs = closing_references(text, REPO, "body")
    assert [(r.repo, r.number) for r in refs] == [(REPO, 21), ("other/lib", 3)]


def test_a_pull_request_url_is_not_an_issue_reference() -> None:
    assert closing_references("Fixes https://github.com/acme/textkit/pull/21", REPO, "body") == []


def test_html_comments_are_stripped_before_linking() -> None:
    body = "<!-- Write 'Fixes #123' here -->\nThis fixes #4.\n<!-- also closes #99"
    assert [r.number for r in closing_references(body, REPO, "body")] == [4]
    assert "123" not in strip_html_comments(body)


def test_null_and_empty_text_give_no_references() -> None:
    assert closing_references(None, REPO, "body") == []
    assert closing_references("", REPO, "body") == []


def test_unicode_and_emoji_around_references_are_fine() -> None:
    refs = closing_references("🎉 Fixes #8 — naïve café ✓ closes #9", REPO, "body")
    assert [r.number for r in refs] == [8, 9]


def test_a_reference_glued_to_letters_does_not_link() -> None:
    assert closing_references("fixes #12abc", REPO, "body") == []


def test_link_issues_merges_sources_of_the_same_issue() -> None:
    linked = link_issues(REPO, "Fix #3: crash", "This fixes #3 and closes other/lib#1", ["fixes #3", "closes #4"])
    assert [(x.repo, x.number, x.sources) for x in linked] == [
        (REPO, 3, ("title", "body", "commit")),
        ("other/lib", 1, ("body",)),
        (REPO, 4, ("commit",)),
    ]


def test_graphql_query_batches_many_pull_requests_in_one_document() -> None:
    query = closing_references_query([1, 2, 3])
    assert query.count("pullRequest(number:") == 3
    assert "pr2: pullRequest(number: 2)" in query


def test_graphql_answer_keeps_cross_repo_targets() -> None:
    data = {
        "repository": {
            "pr1": {
                "number": 1,
                "closingIssuesReferences": {
                    "nodes": [
                        {"number": 5, "repository": {"nameWithOwner": "acme/textkit"}},
                        {"number": 2, "repository": {"nameWithOwner": "other/lib"}},
                    ]
                },
            },
            "pr2": None,
        }
    }
    refs = parse_closing_references(data, REPO, [1, 2])
    assert refs[1] == [IssueReference(REPO, 5, "graphql"), IssueReference("other/lib", 2, "graphql")]
    assert 2 not in refs  # GitHub could not resolve it: its references are unknown, not none


@pytest.mark.parametrize(
    "text", ["fixes #0", "Closes #00", "resolved acme/textkit#0", "fix https://github.com/a/b/issues/0"]
)
def test_issue_number_zero_is_never_a_link(text: str) -> None:
    assert closing_references(text, "acme/textkit", "body") == []
    assert link_issues("acme/textkit", text, None) == []
