"""Per-repository execution environments (declared in settings, built once, rebuilt on change) and named test
runs in them, each test's outcome under pytest's own node id."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from execution_world import REPO
from execution_world import pytest_settings as shared_pytest_settings

from swerl_core.config import ConfigError, Settings, load_settings
from swerl_core.config.execution import RepoEnvironment
from swerl_core.config.loading import as_dict
from swerl_core.execution import (
    Environment,
    EnvironmentBuildError,
    ExecutionError,
    Limits,
    ensure_environment,
    environment_folder,
    limits_for_tests,
    run_named_tests,
)
from swerl_core.execution.sandbox import MiB, run_sandboxed

TESTS = """
import pytest

def test_ok():
    assert True

def test_bad():
    assert 1 == 2

@pytest.mark.parametrize("value", ["a b", "it's", 'say "hi"', "back\\\\slash", "$(touch pwned)"])
def test_odd_ids(value):
    assert value != "it's"

@pytest.fixture
def broken():
    raise RuntimeError("setup fails")

def test_error(broken):
    pass

@pytest.mark.skip
def test_skipped():
    pass

class TestGroup:
    def test_method(self):
        pass
"""


def settings_from_yaml(home: Path, body: str) -> Settings:
    config = home.parent / f"{home.name}-settings.yaml"
    config.write_text(f"home: {home}\n" + textwrap.dedent(body))
    return load_settings(config, env={})


@pytest.fixture(scope="module")
def pytest_settings() -> Settings:
    """Settings declaring acme/calc with pytest installed from the package index (built once per process)."""
    return shared_pytest_settings("test_timeout_s: 60")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    tree = tmp_path / "checkout"
    (tree / "tests").mkdir(parents=True)
    (tree / "tests" / "test_mod.py").write_text(TESTS)
    return tree


def test_a_declaration_reads_from_the_settings_file(tmp_path: Path) -> None:
    settings = settings_from_yaml(
        tmp_path / "home",
        """
        execution:
          environments:
            - repo: acme/kit
              requirements: ["pytest==8.3.4", "attrs>=23"]
              test_command: ["python", "-m", "pytest", "-x", "{tests}", "-q"]
        """,
    )
    declared = settings.execution.environment_for("ACME/Kit")
    assert declared is not None and declared.requirements == ("pytest==8.3.4", "attrs>=23")
    assert declared.test_argv(["t.py::a b", "t.py::c"]) == [
        "python",
        "-m",
        "pytest",
        "-x",
        "t.py::a b",
        "t.py::c",
        "-q",
    ]
    assert settings.execution.environment_for("other/repo") is None
    assert as_dict(settings)["execution"]["environments"][0]["repo"] == "acme/kit"


def test_declarations_survive_the_settings_round_trip_a_launcher_makes(tmp_path: Path) -> None:
    settings = settings_from_yaml(
        tmp_path / "home",
        """
        execution:
          environments:
            - {repo: acme/kit, requirements: ["pytest"], install: ["python", "-c", "print('it''s')"]}
        """,
    )
    copy = tmp_path / "effective.yaml"
    copy.write_text(yaml.safe_dump(as_dict(settings)))
    assert load_settings(copy, env={}) == settings


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- repo: not-a-repo", "OWNER/NAME"),
        ("- {repo: a/b}\n- {repo: a/b}", "one entry per repository"),
        ('- {repo: a/b, test_command: ["pytest", "{tests}", "{tests}"]}', "at most once"),
        ("- {repo: a/b, test_command: []}", "non-empty"),
        ("- {repo: a/b, colour: blue}", "unknown setting"),
        ('- {repo: a/b, test_command: "python -m pytest {tests}"}', r"test_command .*expected an argument list"),
        ('- {repo: a/b, install: "pip install -e ."}', r"install .*expected an argument list"),
        ('- {repo: a/b, test_command: ["pytest", "-k {tests}"]}', "as an argument of its own"),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_key(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        settings_from_yaml(tmp_path / "home", "execution:\n  environments:\n" + textwrap.indent(entry, "    ") + "\n")
    assert "execution.environments" in str(caught.value)


def test_a_repository_without_a_declaration_is_not_run(tmp_path: Path) -> None:
    settings = settings_from_yaml(tmp_path / "home", "execution: {}\n")
    with pytest.raises(ExecutionError, match="acme/kit declares no execution environment"):
        ensure_environment(settings, "acme/kit")


@pytest.mark.slow
def test_named_tests_give_each_outcome_under_pytests_own_id(pytest_settings: Settings, checkout: Path) -> None:
    environment = ensure_environment(pytest_settings, REPO)
    module = "tests/test_mod.py"
    ids = {
        f"{module}::test_ok": "passed",
        f"{module}::test_bad": "failed",
        f"{module}::test_odd_ids[a b]": "passed",
        f"{module}::test_odd_ids[it's]": "failed",
        f'{module}::test_odd_ids[say "hi"]': "passed",
        f"{module}::test_odd_ids[back\\\\slash]": "passed",  # pytest escapes a backslash in an id
        f"{module}::test_odd_ids[$(touch pwned)]": "passed",
        f"{module}::test_error": "error",
        f"{module}::test_skipped": "skipped",
        f"{module}::TestGroup::test_method": "passed",
        f"{module}::test_not_there": "missing",
    }
    run = run_named_tests(environment, checkout, list(ids), limits_for_tests(pytest_settings.execution))
    assert dict(run.outcomes) == ids, run.sandbox.stdout.decode()[-2000:]
    assert run.extra == {}
    assert not (checkout / "pwned").exists()
    assert sorted(p.name for p in checkout.iterdir()) == ["tests"], "the run's report files stayed behind"


@pytest.mark.slow
def test_an_environment_is_built_once_and_reused(pytest_settings: Settings) -> None:
    first = ensure_environment(pytest_settings, REPO)
    ready = first.path / "environment.json"
    stamp = ready.stat().st_mtime_ns
    again = ensure_environment(pytest_settings, REPO)
    assert again.path == first.path and ready.stat().st_mtime_ns == stamp
    assert json.loads(ready.read_text())["digest"] == first.declaration.digest


@pytest.mark.slow
def test_a_test_stopped_by_the_wall_limit_leaves_the_others_reported(pytest_settings: Settings, tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    (tree / "tests").mkdir(parents=True)
    (tree / "tests" / "test_slow.py").write_text(
        "import time\n\ndef test_first():\n    pass\n\ndef test_forever():\n    time.sleep(10_000)\n"
    )
    environment = ensure_environment(pytest_settings, REPO)
    ids = ["tests/test_slow.py::test_first", "tests/test_slow.py::test_forever"]
    run = run_named_tests(environment, tree, ids, Limits(wall_s=5))
    assert run.stopped_by == "time"
    assert dict(run.outcomes) == {ids[0]: "passed", ids[1]: "missing"}


@pytest.mark.slow
def test_the_install_has_the_network_and_the_tests_do_not(pytest_settings: Settings, tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'hi')"
    settings = settings_from_yaml(
        tmp_path / "home",
        f"""
        execution:
          environments:
            - repo: acme/net
              install: ["python", "-c", "{connect}"]
        """,
    )
    environment = ensure_environment(settings, "acme/net")
    listener.settimeout(5)
    listener.accept()[0].close()  # the install step connected
    tree = tmp_path / "checkout"
    tree.mkdir()
    (tree / "test_net.py").write_text(f"def test_connect():\n    {connect}\n")
    pytest_env = ensure_environment(pytest_settings, REPO)
    run = run_named_tests(pytest_env, tree, ["test_net.py::test_connect"])
    assert run.outcomes == {"test_net.py::test_connect": "failed"}
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):  # the test's connection never arrived
        listener.accept()
    listener.close()
    assert environment.path.is_dir()


@pytest.mark.slow
def test_a_changed_declaration_builds_anew_and_drops_the_old_one(tmp_path: Path) -> None:
    def declared(marker: str) -> Settings:
        return settings_from_yaml(
            tmp_path / "home",
            f"""
            execution:
              environments:
                - repo: acme/kit
                  install: ["python", "-c", "open('{marker}', 'w').close()"]
            """,
        )

    old = ensure_environment(declared("made-by-a"), "acme/kit")
    assert (old.path / "made-by-a").exists()
    new = ensure_environment(declared("made-by-b"), "acme/kit")
    assert new.path != old.path and (new.path / "made-by-b").exists()
    assert not old.path.exists()


@pytest.mark.slow
def test_a_failed_install_names_the_repository_and_step_and_leaves_nothing(tmp_path: Path) -> None:
    settings = settings_from_yaml(
        tmp_path / "home",
        """
        execution:
          environments:
            - repo: acme/kit
              install: ["python", "-c", "import sys; print('no compiler here', file=sys.stderr); sys.exit(3)"]
        """,
    )
    with pytest.raises(EnvironmentBuildError) as caught:
        ensure_environment(settings, "acme/kit")
    message = str(caught.value)
    assert "acme/kit" in message and "install command exited 3" in message and "no compiler here" in message
    declaration = settings.execution.environment_for("acme/kit")
    assert declaration is not None and not environment_folder(settings.home, declaration).exists()


def test_an_interpreter_that_does_not_exist_is_named(tmp_path: Path) -> None:
    settings = settings_from_yaml(
        tmp_path / "home",
        """
        execution:
          environments:
            - {repo: acme/kit, python: /nonexistent/python3}
        """,
    )
    with pytest.raises(EnvironmentBuildError, match="acme/kit: cannot run the interpreter /nonexistent/python3"):
        ensure_environment(settings, "acme/kit")


@pytest.mark.slow
def test_the_install_step_cannot_read_swerl_home(tmp_path: Path) -> None:
    # /tmp is private in the sandbox anyway: a home elsewhere shows whether SWERL_HOME itself is hidden.
    home = Path(tempfile.mkdtemp(prefix="swerl-home-", dir="/var/lib" if os.access("/var/lib", os.W_OK) else None))
    home.chmod(0o755)  # a home the sandbox's uid could read, were it shown
    try:
        (home / "mirrors").mkdir()
        (home / "mirrors" / "fix.txt").write_text("the gold patch\n")
        read = f"import pathlib; pathlib.Path('{home}/mirrors/fix.txt').read_text()"
        settings = settings_from_yaml(
            home,
            f"""
            execution:
              environments:
                - repo: acme/peek
                  install: ["python", "-c", "{read}"]
            """,
        )
        with pytest.raises(EnvironmentBuildError, match="FileNotFoundError"):
            ensure_environment(settings, "acme/peek")
    finally:
        shutil.rmtree(home, ignore_errors=True)
        (home.parent / f"{home.name}-settings.yaml").unlink(missing_ok=True)


def a_run_leaving_at_the_report(tmp_path: Path, code: str) -> Environment:
    """An environment whose test command runs ``code`` (``report``: the report's path) instead of pytest."""
    command = (sys.executable, "-c", f"import os; report = os.environ['SWERL_TEST_REPORT']; {code}")
    (tmp_path / "env" / "venv" / "bin").mkdir(parents=True)
    return Environment(RepoEnvironment(repo="acme/liar", test_command=command), tmp_path / "env", Path(sys.base_prefix))


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "code",
    ["os.mkfifo(report)", "os.symlink('/dev/zero', report)", "os.mkdir(report)"],
    ids=["fifo", "symlink-to-dev-zero", "folder"],
)
def test_a_report_that_is_not_a_plain_file_is_not_read(tmp_path: Path, code: str) -> None:
    tree = tmp_path / "checkout"
    tree.mkdir()
    run = run_named_tests(a_run_leaving_at_the_report(tmp_path, code), tree, ["test_a.py::test_a"], Limits(wall_s=20))
    assert run.sandbox.ok, run.sandbox
    assert run.outcomes == {"test_a.py::test_a": "missing"}
    assert run.report_problem.startswith("report unreadable"), run.report_problem


@pytest.mark.timeout(30)
def test_a_huge_report_is_read_up_to_the_output_limit(tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    tree.mkdir()
    line = '{"id": "test_a.py::test_a", "when": "call", "outcome": "passed"}\n'
    code = f"open(report, 'w').write({line!r} * 100_000)"  # 6 MB
    environment = a_run_leaving_at_the_report(tmp_path, code)
    run = run_named_tests(environment, tree, ["test_a.py::test_a"], Limits(wall_s=20, output_bytes=1 * MiB))
    assert run.outcomes == {"test_a.py::test_a": "passed"}, run.sandbox


@pytest.mark.slow
def test_building_a_repository_leaves_another_whose_name_it_prefixes(tmp_path: Path) -> None:
    settings = settings_from_yaml(
        tmp_path / "home",
        """
        execution:
          environments:
            - repo: acme/text
              install: ["python", "-c", "pass"]
        """,
    )
    neighbour = tmp_path / "home" / "environments" / "acme__text-kit-0123456789ab"
    neighbour.mkdir(parents=True)
    (neighbour / "environment.json").write_text("{}")
    ensure_environment(settings, "acme/text")
    assert (neighbour / "environment.json").exists(), "building acme/text removed acme/text-kit's environment"


@pytest.mark.slow
def test_an_environment_built_under_a_closed_umask_runs_in_the_sandbox(tmp_path: Path) -> None:
    settings = settings_from_yaml(
        tmp_path / "home",
        """
        execution:
          environments:
            - repo: acme/closed
              install: ["python", "-c", "open('made-by-install', 'w').close()"]
        """,
    )
    closed = os.umask(0o077)
    try:
        environment = ensure_environment(settings, "acme/closed")
    finally:
        os.umask(closed)
    tree = tmp_path / "checkout"
    tree.mkdir()
    command = [str(environment.bin_dir / "python"), "-c", f"print(open('{environment.path}/made-by-install').read())"]
    result = run_sandboxed(command, tree, read_only=environment.read_only, hidden=(settings.home,))
    assert result.ok, result.stderr


def test_a_test_file_named_like_an_option_reaches_the_command_as_a_path(tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    tree.mkdir()
    code = "import json, sys; open('argv.json', 'w').write(json.dumps(sys.argv[1:]))"
    environment = a_run_leaving_at_the_report(tmp_path, code)
    run_named_tests(environment, tree, ["--collect-only.py::test_a", "tests/test_b.py::test_b"], Limits(wall_s=20))
    assert json.loads((tree / "argv.json").read_text()) == ["./--collect-only.py", "tests/test_b.py"]
