"""Relevant unmodified files: BM25 over a real git repository's base commit, and the LLM re-ranker
through a tiny OpenAI-compatible server on 127.0.0.1 started by the test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from swerl_core.curate import CurateError
from swerl_core.curate.retrieval import LlmRanker, RelevantFiles, tree_files
from swerl_core.git import GitError

FILES = {
    "src/pkg/rows.py": "def parse_rows(text):\n    return [line.split(',') for line in text.splitlines()]\n",
    "src/pkg/slug.py": "def slugify(title):\n    return '-'.join(title.lower().split())\n",
    "src/pkg/wrap.py": "def wrap(text, width):\n    return [text[i:i + width] for i in range(0, len(text), width)]\n",
    "src/pkg/changed.py": "def parse_header(text):\n    return parse_rows(text)[0]\n",
    "tests/test_rows.py": "def test_parse_rows():\n    assert parse_rows('a,b') == [['a', 'b']]\n",
    "README.md": "parse_rows parse_rows parse_rows\n",
}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("repo")
    for path, text in FILES.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
           "HOME": str(work), "PATH": "/usr/bin:/bin"}  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True, check=True)
    return work / ".git", commit.stdout.strip()


@pytest.fixture
def chat_server() -> Iterator[FakeOpenAI]:
    ranking = "1. `src/pkg/wrap.py`\n- src/pkg/unknown.py\nsrc/pkg/rows.py"
    with FakeOpenAI(lambda messages, k: ranking) as server:
        yield server


ISSUE = "parse_rows() keeps a trailing empty row when the text ends with a newline"


def test_tree_lists_the_files_of_the_base_commit(mirror: tuple[Path, str]) -> None:
    git_dir, commit = mirror
    assert sorted(f.path for f in tree_files(git_dir, commit)) == sorted(FILES)


def test_bm25_adds_the_relevant_unchanged_source_file_and_never_tests_docs_or_changed(
    mirror: tuple[Path, str],
) -> None:
    git_dir, commit = mirror
    finder = RelevantFiles({"o/r": git_dir}, 100_000, None)
    got = finder.find("o/r", commit, ISSUE, {"src/pkg/changed.py"}, 1, lambda files: True)
    assert list(got) == ["src/pkg/rows.py"] and got["src/pkg/rows.py"] == FILES["src/pkg/rows.py"]
    everything = finder.find("o/r", commit, ISSUE, {"src/pkg/changed.py"}, 10, lambda files: True)
    assert set(everything) <= {"src/pkg/rows.py", "src/pkg/slug.py", "src/pkg/wrap.py"}


def test_files_that_would_break_the_budget_are_skipped(mirror: tuple[Path, str]) -> None:
    git_dir, commit = mirror
    finder = RelevantFiles({"o/r": git_dir}, 100_000, None)
    assert finder.find("o/r", commit, ISSUE, set(), 3, lambda files: len(files) == 0) == {}


def test_missing_mirror_is_a_git_error(tmp_path: Path) -> None:
    finder = RelevantFiles({"o/r": tmp_path / "absent.git"}, 100_000, None)
    with pytest.raises(GitError):
        finder.find("o/r", "0" * 40, ISSUE, set(), 1, lambda files: True)


def test_llm_ranker_reorders_candidates_through_an_openai_compatible_endpoint(
    mirror: tuple[Path, str], chat_server: FakeOpenAI
) -> None:
    git_dir, commit = mirror
    ranker = LlmRanker(chat_server.url, "tiny-ranker", timeout_s=5)
    finder = RelevantFiles({"o/r": git_dir}, 100_000, ranker)
    got = finder.find("o/r", commit, ISSUE + " and wrap", set(), 1, lambda files: True)
    assert list(got) == ["src/pkg/wrap.py"]
    (request,) = chat_server.requests
    assert request["path"] == "/v1/chat/completions" and request["model"] == "tiny-ranker"
    assert "src/pkg/rows.py" in request["messages"][0]["content"]


def test_unreachable_ranker_falls_back_to_bm25_and_is_recorded(mirror: tuple[Path, str]) -> None:
    git_dir, commit = mirror
    finder = RelevantFiles({"o/r": git_dir}, 100_000, LlmRanker("http://127.0.0.1:9/v1", "m", timeout_s=1))
    got = finder.find("o/r", commit, ISSUE, {"src/pkg/changed.py"}, 1, lambda files: True)
    assert list(got) == ["src/pkg/rows.py"]
    assert len(finder.ranker_errors) == 1 and "LLM ranker" in finder.ranker_errors[0]
    with pytest.raises(CurateError, match="failed"):
        LlmRanker("http://127.0.0.1:9/v1", "m", timeout_s=1).rerank(ISSUE, ["a.py"])
