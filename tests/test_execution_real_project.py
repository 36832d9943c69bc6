"""A real open-source project's own test suite as a world: six 1.17.0's published source (its sdist from the package
index, ``six.py`` and ``test_six.py`` as released) with a bug put in and the release's code as the fix. Validation
finds the project's own failing tests, the gold patch resolves, a no-op does not, and a hostile fix is contained."""

from __future__ import annotations

import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from execution_world import diff_of, escape_attempts, git

from swerl_core.config import Settings, load_settings
from swerl_core.execution import ExecutableInstance, PullRequestCode, resolve, validate_instance

REPO = "benjaminp/six"
RELEASE = "six==1.17.0"
FIXED = 'return s.encode("latin-1")'  # six.b on Python 3: a "byte literal" of code points below 256
BUGGY = 'return s.encode("utf-8")'  # two bytes for each of 128-255


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, str, str, str]:
    """The released source with the bug at its base commit: settings declaring it, the repository, the base commit,
    the released ``six.py`` and the gold patch."""
    root = tmp_path_factory.mktemp("six")
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(root), RELEASE],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert download.returncode == 0, f"the package index must serve {RELEASE}'s sdist: {download.stderr[-500:]}"
    [sdist] = root.glob("six-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(root / "unpacked", filter="data")
    [source] = (root / "unpacked").iterdir()
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    released = (source / "six.py").read_text()
    assert released.count(FIXED) == 1, "the release's six.b changed: pick another bug"
    (repo / "six.py").write_text(released.replace(FIXED, BUGGY))
    (repo / "test_six.py").write_text((source / "test_six.py").read_text())
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "six with a bug")
    base = git(repo, "rev-parse", "HEAD").strip()
    config = root / "settings.yaml"
    config.write_text(
        f"home: {root / 'home'}\nexecution:\n  test_timeout_s: 120\n  environments:\n"
        f'    - {{repo: {REPO}, requirements: ["pytest"]}}\n'
    )
    settings = load_settings(config, env={})
    return settings, repo, base, released, diff_of(repo, "six.py", released)


@pytest.mark.slow
def test_the_projects_own_tests_validate_its_fix_and_judge_candidates(
    project: tuple[Settings, Path, str, str, str], tmp_path: Path
) -> None:
    settings, repo, base, released, gold = project
    validation = validate_instance(settings, PullRequestCode(REPO, repo / ".git", base, gold), tmp_path / "validate")
    assert validation.status == "executable", validation
    assert "test_six.py::test_b" in validation.fail_to_pass, validation
    assert len(validation.pass_to_pass) > 100, "the rest of six's suite passes both ways"
    instance = ExecutableInstance(
        f"{REPO.replace('/', '__')}-1", REPO, base, validation.fail_to_pass, validation.pass_to_pass
    )

    def judged(patch: str) -> str:
        verdict = resolve(settings, instance, repo / ".git", patch, tmp_path / "resolve")
        return verdict.reason if verdict.resolved else f"{verdict.reason}: {verdict.detail}"

    assert judged(gold) == "resolved"
    no_op = diff_of(repo, "six.py", "# looked at it\n" + (repo / "six.py").read_text())
    assert judged(no_op).startswith("tests_failed")
    outside = Path(__file__).resolve().parent / ".six-escaped"
    with socket.create_server(("127.0.0.1", 0)) as listening:
        attack = escape_attempts(outside, repo / ".git", listening.getsockname()[1])
        future = "from __future__ import absolute_import\n"  # the attack goes after it: nothing may precede it
        hostile = diff_of(repo, "six.py", released.replace(future, future + attack, 1))
        # A correct fix that fails its own import if any attack worked: resolved means contained.
        assert judged(hostile) == "resolved"
    assert not outside.exists()
