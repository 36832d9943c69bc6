"""Stage 6: relevant unmodified files for the code context (paper §2.1: the model must not learn that
every file it is shown needs an edit).

Candidates are the repository's source files at the PR's base commit (read from the bare mirror:
one ``git ls-tree`` and one ``git cat-file --batch`` per commit), minus the changed files, tests,
docs and generated or vendored code. They are ranked by BM25 against the problem statement and,
optionally, re-ranked by an LLM behind an OpenAI-compatible ``/chat/completions`` endpoint; the top-k
that still fit the prompt budget are added. Reads git; never writes anything.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from swerl_core.chat_endpoint import chat_completions_url, post_chat_completion
from swerl_core.curate.bm25 import rank, tokenize
from swerl_core.curate.errors import CurateError
from swerl_core.errors import EndpointError
from swerl_core.file_kinds import CODE, file_kind
from swerl_core.git import GitError, read_blobs, ref_state, run_git

RERANK_CANDIDATES = 20  # BM25's best files shown to the LLM ranker


@dataclass(frozen=True)
class TreeFile:
    """A blob in a commit's tree: path, SHA and size in bytes."""

    path: str
    sha: str
    size: int


def tree_files(git_dir: Path, commit: str) -> list[TreeFile]:
    """Every regular file of ``commit`` in the mirror at ``git_dir`` (submodules and symlinks left out)."""
    out = run_git(git_dir, ["ls-tree", "-r", "-z", "--long", "--full-tree", commit])
    files = []
    for record in out.decode("utf-8", "surrogateescape").split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, kind, sha, size = meta.split()
        if kind == "blob" and mode in ("100644", "100755") and size.isdigit():
            files.append(TreeFile(path, sha, int(size)))
    return files


def mirror_states(mirrors: Mapping[str, Path]) -> dict[str, str]:
    """Per repository, the state of the mirror retrieval would read: its refs' digest, ``absent`` or ``unreadable``.

    Part of a snapshot's inputs: a mirror that appears, or fetches new commits, can change which
    relevant files a PR gets, so it must change the snapshot id.
    """
    states = {}
    for repo, git_dir in sorted(mirrors.items()):
        try:
            states[repo] = ref_state(git_dir) or "absent"
        except GitError:
            states[repo] = "unreadable"  # retrieval will fail on it too and record that in the notes
    return states


class LlmRanker:
    """Re-ranks candidate paths with a chat model behind an OpenAI-compatible endpoint."""

    def __init__(self, url: str, model: str, timeout_s: float) -> None:
        self.url = chat_completions_url(url)
        self.model = model
        self.timeout_s = timeout_s

    def rerank(self, issue: str, paths: list[str]) -> list[str]:
        """``paths`` reordered by the model's judgement of relevance to ``issue``; unnamed paths keep their order.

        Raises :class:`CurateError` when the endpoint fails or answers in an unexpected shape.
        """
        listing = "\n".join(paths)
        prompt = (
            "Which of these repository files are most relevant to the issue below? Answer with file paths only, "
            f"one per line, most relevant first.\n\n<issue>\n{issue.strip()[:8000]}\n</issue>\n\n"
            f"<files>\n{listing}\n</files>"
        )
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "temperature": 0}
        try:
            reply = post_chat_completion(self.url, body, timeout_s=self.timeout_s)
            answer = reply["choices"][0]["message"]["content"]
        except (EndpointError, KeyError, IndexError, TypeError) as exc:
            raise CurateError(f"LLM ranker at {self.url} failed: {exc}") from None
        named = []
        known = set(paths)
        for line in str(answer).splitlines():
            path = re.sub(r"^\s*(?:[-*]|\d+[.)])?\s*", "", line).strip().strip("`'\"")
            if path in known and path not in named:
                named.append(path)
        return named + [p for p in paths if p not in named]


class RelevantFiles:
    """Finds relevant unmodified files per PR, caching each mirror's blob texts and token counts."""

    def __init__(self, mirrors: Mapping[str, Path], max_candidate_bytes: int, ranker: LlmRanker | None) -> None:
        self.mirrors = mirrors
        self.max_candidate_bytes = max_candidate_bytes
        self.ranker = ranker
        self._texts: dict[str, str] = {}
        self._tokens: dict[str, Counter[str]] = {}
        self._repo: str | None = None
        self.ranker_errors: list[str] = []

    def find(
        self,
        repo: str,
        base_commit: str,
        issue: str,
        changed: set[str],
        k: int,
        fits: Callable[[dict[str, str]], bool],
    ) -> dict[str, str]:
        """Up to ``k`` unchanged source files relevant to ``issue`` whose addition keeps ``fits(files)`` true.

        Raises :class:`GitError` when the mirror or the commit cannot be read.
        """
        if k <= 0:
            return {}
        if repo != self._repo:  # PRs arrive grouped by repository: keep one repository's blobs at a time
            self._texts.clear()
            self._tokens.clear()
            self._repo = repo
        git_dir = self.mirrors.get(repo)
        if git_dir is None or not git_dir.exists():
            raise GitError(f"no mirror of {repo}")
        candidates = [
            f
            for f in tree_files(git_dir, base_commit)
            if f.path not in changed and f.size <= self.max_candidate_bytes and file_kind(f.path) == CODE
        ]
        self._load(git_dir, [f.sha for f in candidates])
        candidates = [f for f in candidates if f.sha in self._texts]
        documents = [self._tokens[f.sha] + Counter(tokenize(f.path)) for f in candidates]
        ranked = [candidates[i].path for i in rank(issue, documents)]
        if self.ranker is not None and ranked:
            try:
                ranked = self.ranker.rerank(issue, ranked[:RERANK_CANDIDATES]) + ranked[RERANK_CANDIDATES:]
            except CurateError as exc:
                self.ranker_errors.append(str(exc))
        by_path = {f.path: f for f in candidates}
        chosen: dict[str, str] = {}
        for path in ranked:
            trial = {**chosen, path: self._texts[by_path[path].sha]}
            if fits(trial):
                chosen = trial
                if len(chosen) >= k:
                    break
        return chosen

    def _load(self, git_dir: Path, shas: list[str]) -> None:
        wanted = [s for s in set(shas) if s not in self._texts]
        for sha, data in read_blobs(git_dir, wanted).items():
            if b"\0" in data[:8000]:
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue  # a non-UTF-8 file would reach the model as replacement characters
            self._texts[sha] = text.replace("\r\n", "\n")
            self._tokens[sha] = Counter(tokenize(text))
