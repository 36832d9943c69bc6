"""Whether a candidate patch resolves an executable instance (SWE-bench's rule in swerl's sandbox), SWE-bench
records read as instances, and hostile candidates contained: not resolved, with a reason, nothing outside changed."""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import pytest
from execution_world import BUGGY, FIXED, TESTS, calc_instance, diff_of, git, pytest_settings

from swerl_core.config import Settings
from swerl_core.execution import ExecutableInstance, resolve, swebench_instance


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, ExecutableInstance]:
    """A repository with the bug at its base, settings declaring it (small limits), and its instance."""
    repo = tmp_path_factory.mktemp("resolution") / "repo"
    instance = calc_instance(repo)
    settings = pytest_settings("test_timeout_s: 8\noutput_mb: 1\ndisk_mb: 32\nprocesses: 64")
    return settings, repo, instance


def candidate(repo: Path, prelude: str) -> str:
    """A patch of calc.py that runs ``prelude`` when the module is imported and then fixes the bug."""
    return diff_of(repo, "calc.py", textwrap.dedent(prelude) + "\n" + FIXED)


def test_a_swebench_record_reads_as_an_instance() -> None:
    record = {
        "instance_id": "x__y-7",
        "repo": "x/y",
        "base_commit": "abc",
        "FAIL_TO_PASS": '["t.py::test_a[a b]"]',
        "PASS_TO_PASS": ["t.py::test_b"],
    }
    instance = swebench_instance(record)
    assert (instance.fail_to_pass, instance.pass_to_pass, instance.test_patch) == (
        ("t.py::test_a[a b]",),
        ("t.py::test_b",),
        "",
    )
    with pytest.raises(ValueError, match="x__y-7"):
        swebench_instance({**record, "FAIL_TO_PASS": '"t.py::test_a"'})


@pytest.mark.slow
def test_the_gold_patch_resolves(world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path) -> None:
    settings, repo, instance = world
    result = resolve(settings, instance, repo / ".git", diff_of(repo, "calc.py", FIXED), tmp_path)
    assert result.resolved, result
    assert dict(result.outcomes) == {"test_calc.py::test_add": "passed", "test_calc.py::test_zero": "passed"}
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_patch_that_fixes_nothing_fails_the_tests(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path
) -> None:
    settings, repo, instance = world
    result = resolve(settings, instance, repo / ".git", diff_of(repo, "calc.py", "# no-op\n" + BUGGY), tmp_path)
    assert result.reason == "tests_failed" and "test_add" in result.detail


@pytest.mark.slow
def test_a_patch_that_does_not_apply_is_not_resolved(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path
) -> None:
    settings, repo, instance = world
    stale = diff_of(repo, "calc.py", FIXED).replace("return a - b", "return a * b")
    result = resolve(settings, instance, repo / ".git", stale, tmp_path)
    assert result.reason == "did_not_apply" and "candidate patch" in result.detail


@pytest.mark.slow
def test_a_candidate_reading_a_secret_outside_is_not_resolved_and_learns_nothing(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path
) -> None:
    settings, repo, instance = world
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    patch = candidate(repo, f"print(open({str(secret)!r}).read())")
    result = resolve(settings, instance, repo / ".git", patch, tmp_path / "work")
    assert not result.resolved and result.reason == "crashed"
    assert secret.read_text() == "hunter2"


@pytest.mark.slow
def test_a_candidate_cannot_read_swerl_home(world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path) -> None:
    settings, repo, instance = world
    database = settings.home / "swerl.duckdb"
    database.write_text("every pull request and its fix")
    patch = candidate(repo, f"print(open({str(database)!r}).read())")
    result = resolve(settings, instance, repo / ".git", patch, tmp_path)
    assert not result.resolved and result.reason == "crashed"
    assert database.read_text() == "every pull request and its fix"


@pytest.mark.slow
def test_a_candidate_opening_a_socket_is_not_resolved(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path
) -> None:
    settings, repo, instance = world
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    patch = candidate(repo, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
    result = resolve(settings, instance, repo / ".git", patch, tmp_path)
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()
    assert not result.resolved and result.reason == "crashed"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prelude", "reason"),
    [
        ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", "timed_out"),
        ("import time\ntime.sleep(10_000)", "timed_out"),
        ("import sys\nfor _ in range(16384):\n    sys.stdout.write('x' * 65536)", "crashed"),
        (
            "import os\nfor i in range(64):\n    with open(f'fill-{i}', 'wb') as f:\n"
            "        f.write(os.urandom(4 << 20))\n        os.fsync(f.fileno())\n"
            "import time\ntime.sleep(10_000)",
            "crashed",
        ),
    ],
    ids=["fork-bomb", "sleep-forever", "print-a-gigabyte", "fill-the-disk"],
)
def test_a_hostile_candidate_is_contained_and_not_resolved(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path, prelude: str, reason: str
) -> None:
    settings, repo, instance = world
    patch = candidate(repo, prelude)
    beside = tmp_path / "beside.txt"
    beside.write_text("unchanged")
    result = resolve(settings, instance, repo / ".git", patch, tmp_path / "work")
    assert not result.resolved and result.reason == reason, result
    assert beside.read_text() == "unchanged" and sorted(p.name for p in tmp_path.iterdir()) == ["beside.txt", "work"]
    assert not list((tmp_path / "work").iterdir()), "the checkout stayed behind"
    assert _processes_working_in(tmp_path / "work") == [], "a process of the candidate outlived the run"
    again = resolve(settings, instance, repo / ".git", diff_of(repo, "calc.py", FIXED), tmp_path / "again")
    assert again.resolved, "the next evaluation did not go on"


def _processes_working_in(folder: Path) -> list[int]:
    """PIDs whose working directory is ``folder`` or inside it (the sandboxed tests run in the checkout there)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "cwd").startswith(str(folder)):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


PASS_EVERYTHING = """
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
"""


@pytest.mark.slow
def test_a_conftest_that_marks_every_test_passed_does_not_resolve(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path
) -> None:
    settings, repo, instance = world
    hack = new_files(repo, {"conftest.py": PASS_EVERYTHING})
    result = resolve(settings, instance, repo / ".git", hack, tmp_path)
    assert result.reason == "tests_failed", result


def new_files(repo: Path, files: dict[str, str]) -> str:
    """The diff that adds ``files`` to ``repo`` (its work tree left as it was)."""
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
        git(repo, "add", "-N", path)
    patch = git(repo, "diff", "--", *files)
    git(repo, "rm", "-q", "--cached", *files)
    for path in files:
        (repo / path).unlink()
    return patch


@pytest.mark.slow
@pytest.mark.parametrize("config", ["pytest.toml", ".pytest.toml"])
def test_a_pytest_config_of_the_candidates_loading_a_plugin_that_passes_everything_is_undone(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path, config: str
) -> None:
    settings, repo, instance = world
    # pytest 9 reads pytest.toml before pytest.ini: a wrong answer adds one that loads its own plugin.
    hack = new_files(repo, {"hack/hackplugin.py": PASS_EVERYTHING,
                            config: '[pytest]\npythonpath = ["hack"]\naddopts = ["-p", "hackplugin"]\n'})  # fmt: skip
    result = resolve(settings, instance, repo / ".git", hack, tmp_path)
    assert result.reason == "tests_failed", result


@pytest.mark.slow
def test_a_candidate_that_forges_the_report_and_ends_the_run_is_not_resolved(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path
) -> None:
    settings, repo, instance = world
    forge = """
        import glob, json, os
        for report in glob.glob(".swerl-test-report-*") + [os.environ.get("SWERL_TEST_REPORT", "")]:
            if report:
                with open(report, "a") as out:
                    for test in ("test_calc.py::test_add", "test_calc.py::test_zero"):
                        out.write(json.dumps({"id": test, "when": "call", "outcome": "passed"}) + "\\n")
        os._exit(0)
    """
    result = resolve(settings, instance, repo / ".git", candidate(repo, forge), tmp_path)
    assert result.reason == "crashed" and "did not finish its session" in result.detail, result


def test_a_report_line_nested_past_the_parsers_depth_is_skipped_and_the_fix_still_judged(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path
) -> None:
    settings, repo, instance = world
    deep = """
        import atexit, glob
        def _deep():  # once pytest has written the report
            for report in glob.glob(".swerl-test-report-*"):
                with open(report, "a") as out:
                    out.write("[" * 200_000 + "\\n")
        atexit.register(_deep)
    """
    result = resolve(settings, instance, repo / ".git", candidate(repo, deep), tmp_path)
    assert result.reason == "resolved", result


@pytest.mark.slow
def test_a_fix_that_also_edits_the_tests_is_judged_on_the_fix(
    world: tuple[Settings, Path, ExecutableInstance], tmp_path: Path
) -> None:
    settings, repo, instance = world
    fix_and_test = diff_of(repo, "calc.py", FIXED) + diff_of(
        repo, "test_calc.py", TESTS + "\n\ndef test_mine():\n    pass\n"
    )
    result = resolve(settings, instance, repo / ".git", fix_and_test, tmp_path)
    assert result.resolved, result
