"""A repository's declared execution environment, built once per declaration and found again.

An environment is a virtual environment in ``$SWERL_HOME/environments/<owner>__<name>-<digest>/venv``, made from
the declaration's interpreter; its requirement lines are installed by pip and its install command run inside the
sandbox with the network (the only sandboxed step that has it). The folder is complete once its
``environment.json`` exists (written last, under a lock): a crash leaves a folder without it, which the next build
removes. A changed declaration has another digest, so it is built anew and the repository's other folders go.
This module never runs a repository's tests (:mod:`.named_tests` does) and never imports a stage.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swerl_core.config import Settings
from swerl_core.config.execution import ExecutionConfig, RepoEnvironment
from swerl_core.config.loading import as_dict
from swerl_core.errors import LockTimeout
from swerl_core.execution.errors import EnvironmentBuildError, ExecutionError
from swerl_core.execution.sandbox import Limits, MiB, SandboxResult, remove_tree, run_sandboxed
from swerl_core.locks import LockFolder

READY = "environment.json"
# Installing a real project's dependencies can take gigabytes (a torch wheel alone is ~1 GB): builds get wide
# disk and file limits, and pip's scratch space on disk rather than in the small private /tmp.
BUILD_DISK_BYTES = 64 * 1024 * MiB
BUILD_FILE_BYTES = 8 * 1024 * MiB
_FORWARDED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


@dataclass(frozen=True)
class Environment:
    """A built environment: its declaration, folder, and the interpreter prefix a sandbox must show."""

    declaration: RepoEnvironment
    path: Path
    base_prefix: Path

    @property
    def bin_dir(self) -> Path:
        """The virtual environment's ``bin`` folder (first on a sandboxed command's ``PATH``)."""
        return self.path / "venv" / "bin"

    @property
    def read_only(self) -> tuple[Path, ...]:
        """What a sandboxed command of this environment must see: the environment and its base interpreter."""
        return (self.path, self.base_prefix)


def environment_folder(home: Path, declaration: RepoEnvironment) -> Path:
    """Where the environment of ``declaration`` is built: one folder per repository and declaration digest."""
    owner, name = declaration.repo.lower().split("/")
    return home / "environments" / f"{owner}__{name}-{declaration.digest}"


def declared_repos(settings: Settings, repos: Iterable[str]) -> dict[str, str]:
    """Each of ``repos`` that declares an execution environment → its declaration's digest."""
    out = {}
    for repo in sorted(set(repos)):
        declaration = settings.execution.environment_for(repo)
        if declaration is not None:
            out[repo] = declaration.digest
    return out


def execution_inputs(settings: Settings, repos: Iterable[str]) -> dict[str, Any] | None:
    """What validating the pull requests of ``repos`` depends on besides the code (a snapshot id hashes it): each
    declared repository's declaration digest, the sandbox's limits and the gold patch's runs; None when none
    declares one."""
    environments = declared_repos(settings, repos)
    if not environments:
        return None
    return {"environments": environments, "limits": [*test_limits(settings.execution), settings.execution.gold_runs]}


def test_limits(config: ExecutionConfig) -> list[float]:
    """The limits that can change a test run's outcome (time, memory, output, disk, processes), as plain numbers."""
    return [config.test_timeout_s, config.memory_mb, config.output_mb, config.disk_mb, config.processes]


def ensure_environment(settings: Settings, repo: str, log: Callable[[str], None] | None = None) -> Environment:
    """The built environment of ``repo``, building it first when its declaration has none yet.

    Raises :class:`ExecutionError` when ``repo`` declares no environment and :class:`EnvironmentBuildError` when its
    install fails (the message names the repository, the step and its last line of output).
    """
    declaration = settings.execution.environment_for(repo)
    if declaration is None:
        raise ExecutionError(f"{repo} declares no execution environment (settings: execution.environments)")
    folder = environment_folder(settings.home, declaration)
    if (folder / READY).exists():
        return _read(declaration, folder)
    lock = LockFolder.of_home(settings.home).named(f"environment-{folder.name}")
    with lock.hold(settings.execution.build_timeout_s + 60):
        if not (folder / READY).exists():
            _build(declaration, folder, settings.execution, log or (lambda _: None), settings.home.resolve())
    return _read(declaration, folder)


def _read(declaration: RepoEnvironment, folder: Path) -> Environment:
    recorded = json.loads((folder / READY).read_text(encoding="utf-8"))
    return Environment(declaration, folder, Path(recorded["base_prefix"]))


def _build(
    declaration: RepoEnvironment, folder: Path, config: ExecutionConfig, log: Callable[[str], None], home: Path
) -> None:
    """Build ``declaration``'s environment in ``folder``; its install steps never see ``home`` (``SWERL_HOME``: its
    mirrors hold every fix, its store every pull request) but their own folder, bound back inside it."""
    if os.path.lexists(folder):  # a build that died half way; moved first, so a straggler writes elsewhere
        stale = folder.with_name(f"{folder.name}.stale-{secrets.token_hex(4)}")
        folder.rename(stale)
        remove_tree(stale)
    folder.mkdir(parents=True)
    python = declaration.python or sys.executable
    log(f"building the execution environment of {declaration.repo} in {folder}")
    try:
        base_prefix = _make_venv(declaration, folder, python)
        venv_python = str(folder / "venv" / "bin" / "python")
        if declaration.requirements:
            (folder / "requirements.txt").write_text("\n".join(declaration.requirements) + "\n", encoding="utf-8")
            pip = [venv_python, "-m", "pip", "install", "--disable-pip-version-check", "-r", "requirements.txt"]
            _check(declaration, "pip install", _install_step(pip, folder, base_prefix, config, home))
        if declaration.install:
            _check(
                declaration,
                "the install command",
                _install_step(list(declaration.install), folder, base_prefix, config, home),
            )
    except BaseException:
        remove_tree(folder)
        raise
    remove_tree(folder / "build-tmp")
    _open_to_everyone(folder)
    ready = {
        "repo": declaration.repo,
        "digest": declaration.digest,
        "declaration": as_dict(declaration),
        "base_prefix": str(base_prefix),
        "built": datetime.now(UTC).isoformat(),
    }
    (folder / READY).write_text(json.dumps(ready, indent=2) + "\n", encoding="utf-8")
    _remove_older_declarations(folder, home, log)
    log(f"built the execution environment of {declaration.repo}")


def _remove_older_declarations(folder: Path, home: Path, log: Callable[[str], None]) -> None:
    """Remove the folders of the repository's earlier declarations: exactly ``<owner>__<name>-<digest>`` (so
    ``acme/text`` never takes ``acme__text-kit-…``), each under its own lock; one in use is left for later."""
    same_repo = re.compile(re.escape(folder.name.rsplit("-", 1)[0]) + r"-[0-9a-f]{12}")
    locks = LockFolder.of_home(home)
    for other in folder.parent.iterdir():
        if other == folder or not same_repo.fullmatch(other.name):
            continue
        try:
            with locks.named(f"environment-{other.name}").hold(0):
                remove_tree(other)
        except LockTimeout:
            log(f"left {other} in place: another process holds it")


def _open_to_everyone(folder: Path) -> None:
    """Let every user read ``folder`` (the sandbox's uid runs what is in it), whatever umask the build ran under."""
    done = subprocess.run(["chmod", "-R", "go+rX", "--", str(folder)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise EnvironmentBuildError(f"cannot open {folder} to the sandbox: {_last_line(done.stderr)}")


def _make_venv(declaration: RepoEnvironment, folder: Path, python: str) -> Path:
    options = ["--system-site-packages"] if declaration.system_site_packages else []
    try:
        made = _host_run([python, "-m", "venv", *options, str(folder / "venv")], 600)
        prefix = _host_run([python, "-c", "import sys; print(sys.base_prefix)"], 60)
    except OSError as exc:
        raise EnvironmentBuildError(f"{declaration.repo}: cannot run the interpreter {python}: {exc}") from None
    if made.returncode != 0:
        raise EnvironmentBuildError(f"{declaration.repo}: python -m venv failed: {_last_line(made.stderr)}")
    return Path(prefix.stdout.strip()).resolve()


def _host_run(argv: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` on the host in its own session; whatever ends the wait (a timeout, an interrupt), the session
    is killed, so that nothing (ensurepip) keeps writing into a folder that is being removed."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, umask=0o022
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _install_step(
    command: list[str], folder: Path, base_prefix: Path, config: ExecutionConfig, home: Path
) -> SandboxResult:
    (folder / "build-tmp").mkdir(exist_ok=True)
    env = {name: value for name, value in os.environ.items() if name.startswith("PIP_") or name in _FORWARDED_ENV}
    env.update(TMPDIR=str(folder / "build-tmp"), PIP_NO_CACHE_DIR="1", VIRTUAL_ENV=str(folder / "venv"))
    shown = [base_prefix]
    user_config = next((p for p in _pip_user_configs() if p.is_file()), None)
    if user_config is not None:  # the caller's pip settings (an index, find-links) live under its hidden home
        shown.append(user_config)
        env["PIP_CONFIG_FILE"] = str(user_config)
    limits = Limits(
        wall_s=config.build_timeout_s,
        memory_bytes=config.memory_mb * MiB,
        output_bytes=config.output_mb * MiB,
        processes=config.processes,
        file_bytes=BUILD_FILE_BYTES,
        disk_bytes=BUILD_DISK_BYTES,
    )
    return run_sandboxed(
        command,
        folder,
        limits,
        read_only=shown,
        hidden=(home,),
        env=env,
        path_prefix=[folder / "venv" / "bin"],
        network=True,
    )


def _pip_user_configs() -> list[Path]:
    home = Path.home()
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [config_home / "pip" / "pip.conf", home / ".pip" / "pip.conf"]


def _check(declaration: RepoEnvironment, step: str, result: SandboxResult) -> None:
    if result.ok:
        return
    why = f"stopped by its {result.stopped_by} limit" if result.stopped_by else f"exited {result.exit_code}"
    detail = _last_line(result.stderr.decode(errors="replace")) or _last_line(result.stdout.decode(errors="replace"))
    raise EnvironmentBuildError(
        f"the execution environment of {declaration.repo} did not build: {step} {why}: {detail}"
    )


def _last_line(text: str) -> str:
    """pip's last ``ERROR:`` line when it printed one (warnings may follow it), else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or [""])[-1][:300]
