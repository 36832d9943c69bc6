"""The local stack behind ``make up`` / ``make down`` / ``make deploy``: a Prefect server, a worker, an MLflow server.

Everything runs on 127.0.0.1 in the background, as child processes in their own sessions, with pid files
and logs under ``$SWERL_HOME/run/``. The Prefect server keeps its SQLite database under ``$SWERL_HOME``;
the MLflow server serves the same ``mlflow.db`` and ``mlartifacts/`` the CLI writes. :func:`stop` stops
exactly the processes :func:`start` recorded (checked by command line, so a recycled pid is left alone).
Processes are driven through their command-line programs; this module never imports Prefect or MLflow.
They run in ``$SWERL_HOME``, never in the source tree: the deployments name their flows by module
(``flows.retrain.retrain``) and their recipes by name, and the files read here are the package's own
(:mod:`swerl_core.package_files`), so an installed swerl runs the stack from any directory.

Run it as ``python -m swerl_core.stack up|down|deploy|status``; ports come from ``SWERL_PREFECT_PORT``
(default 4200) and ``SWERL_MLFLOW_PORT`` (default 5000).

This stack has no logins, on purpose: it listens on 127.0.0.1 only, and ``up`` says so. Production logins in the
caller's environment (:data:`PRODUCTION_LOGINS`) are not passed to its processes. The locked stack is
``infra/compose.yaml``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swerl_core import package_files
from swerl_core.errors import SwerlError

CPU_POOL, GPU_POOL = "swerl-cpu", "swerl-gpu"
GITHUB_TAG, GITHUB_CONCURRENCY = "github-api", 4
GPU_TEMPLATE = package_files.packaged(package_files.GPU_JOB_TEMPLATE)
PREFECT_FILE = package_files.packaged(package_files.PREFECT_FILE)
_QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
}


# The production stack's credentials (infra/compose.yaml): a shell that holds them for the locked stack would
# otherwise make the local server ask for a Prefect login, or send MLflow passwords where none is needed.
PRODUCTION_LOGINS = (
    "PREFECT_SERVER_API_AUTH_STRING",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_API_KEY",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
)
NO_LOGIN_NOTICE = (
    "No logins: this local stack listens on 127.0.0.1 only and has no authentication. Never expose it; "
    'to share a stack, run infra/compose.yaml (docs/scale-out.md, "Before you open the ports").'
)


class StackError(SwerlError):
    """The local stack cannot start, answer or stop; the message names the process and its log."""


@dataclass(frozen=True)
class Stack:
    """Where the local stack lives: ``SWERL_HOME``, its run directory and the two ports."""

    home: Path
    prefect_port: int = 4200
    mlflow_port: int = 5000

    @property
    def run_dir(self) -> Path:
        """Pid files, logs and ``stack.json``."""
        return self.home / "run"

    @property
    def prefect_url(self) -> str:
        """The Prefect UI (the API is under ``/api``)."""
        return f"http://127.0.0.1:{self.prefect_port}"

    @property
    def prefect_api(self) -> str:
        """``PREFECT_API_URL`` for clients of this stack."""
        return self.prefect_url + "/api"

    @property
    def mlflow_url(self) -> str:
        """The MLflow UI and tracking server."""
        return f"http://127.0.0.1:{self.mlflow_port}"

    def client_env(self) -> dict[str, str]:
        """Environment variables that point a client (CLI, worker, flow) at this stack."""
        return {
            **_QUIET,
            "SWERL_HOME": str(self.home),
            "PREFECT_HOME": str(self.home / "prefect"),
            "PREFECT_API_URL": self.prefect_api,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
        }


def stack_from_env(env: Mapping[str, str] | None = None) -> Stack:
    """The stack described by ``SWERL_HOME``, ``SWERL_PREFECT_PORT`` and ``SWERL_MLFLOW_PORT``."""
    env = os.environ if env is None else env
    home = Path(env.get("SWERL_HOME") or "data").resolve()
    try:
        return Stack(home, int(env.get("SWERL_PREFECT_PORT", 4200)), int(env.get("SWERL_MLFLOW_PORT", 5000)))
    except ValueError:
        raise StackError("SWERL_PREFECT_PORT and SWERL_MLFLOW_PORT must be port numbers") from None


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _services(stack: Stack) -> dict[str, list[str]]:
    home = stack.home
    return {
        "prefect-server": [
            _bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(stack.prefect_port),
        ],
        "mlflow": [
            _bin("mlflow"), "server", "--host", "127.0.0.1", "--port", str(stack.mlflow_port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
            "--default-artifact-root", (home / "mlartifacts").as_uri(),
        ],
        "worker": [_bin("prefect"), "worker", "start", "--pool", CPU_POOL, "--type", "process"],
    }  # fmt: skip


def _service_env(stack: Stack, name: str, base: Mapping[str, str]) -> dict[str, str]:
    env = {**{k: v for k, v in base.items() if k not in PRODUCTION_LOGINS}, **stack.client_env()}
    if name == "prefect-server":
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{stack.home / 'prefect.db'}"
        env["PREFECT_UI_API_URL"] = stack.prefect_api
    elif name == "mlflow":
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # halves the server's processes and start-up time
    else:
        env["PREFECT_WORKER_QUERY_SECONDS"] = base.get("PREFECT_WORKER_QUERY_SECONDS", "2")
    return env


def start(stack: Stack, env: Mapping[str, str] | None = None, timeout_s: float = 180.0) -> Stack:
    """Start whatever part of the stack is not running yet and wait until both servers are healthy."""
    base = dict(os.environ if env is None else env)
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    (stack.home / "prefect").mkdir(parents=True, exist_ok=True)
    services = _services(stack)
    for name in ("prefect-server", "mlflow"):
        if _running(stack, name) is None:
            _launch(stack, name, services[name], _service_env(stack, name, base))
    _wait_healthy(stack, "prefect-server", stack.prefect_api + "/health", timeout_s)
    _wait_healthy(stack, "mlflow", stack.mlflow_url + "/health", timeout_s)
    if _running(stack, "worker") is None:
        _launch(stack, "worker", services["worker"], _service_env(stack, "worker", base))
    (stack.run_dir / "stack.json").write_text(json.dumps({k: str(v) for k, v in asdict(stack).items()}) + "\n")
    return stack


def _launch(stack: Stack, name: str, cmd: Sequence[str], env: Mapping[str, str]) -> None:
    log = (stack.run_dir / f"{name}.log").open("ab")
    child = subprocess.Popen(
        list(cmd), cwd=stack.home, env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    (stack.run_dir / f"{name}.pid").write_text(f"{child.pid}\n{' '.join(cmd[1:3])}\n")


def _running(stack: Stack, name: str) -> int | None:
    """The pid of service ``name`` when its pid file names a live process with the recorded command line."""
    import psutil

    path = stack.run_dir / f"{name}.pid"
    try:
        pid_text, marker = path.read_text().splitlines()[:2]
        process = psutil.Process(int(pid_text))
        if process.status() == psutil.STATUS_ZOMBIE or marker not in " ".join(process.cmdline()):
            return None
        return process.pid
    except (OSError, ValueError, psutil.Error):
        return None


def _wait_healthy(stack: Stack, name: str, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if _running(stack, name) is None:
            raise StackError(f"{name} exited while starting; see {stack.run_dir / (name + '.log')}")
        time.sleep(0.5)
    raise StackError(f"{name} did not answer {url} within {timeout_s:.0f} s; see {stack.run_dir / (name + '.log')}")


def stop(stack: Stack) -> list[str]:
    """Stop the worker, then the servers, that :func:`start` recorded; returns the names stopped."""
    stopped = []
    for name in ("github", "worker", "mlflow", "prefect-server"):
        pid = _running(stack, name)
        if pid is not None:
            # A worker can hang after one SIGINT (measured with prefect 3.9.1): a second one ends it.
            signals = (signal.SIGINT, signal.SIGINT) if name == "worker" else (signal.SIGTERM,)
            _stop_group(pid, signals)
            stopped.append(name)
        (stack.run_dir / f"{name}.pid").unlink(missing_ok=True)
    return stopped


def _stop_group(pid: int, signals: Sequence[signal.Signals], grace_s: float = 15.0) -> None:
    import psutil

    for sig in signals:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        time.sleep(1.0)
    with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
        psutil.Process(pid).wait(grace_s)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def deploy(stack: Stack, env: Mapping[str, str] | None = None) -> None:
    """Create the work pools (``swerl-cpu``: process, ``swerl-gpu``: kubernetes), the ``github-api`` tag limit
    and apply the deployments."""
    run_env = {**(os.environ if env is None else env), **stack.client_env()}
    prefect = _bin("prefect")
    home = stack.home
    _check_call([prefect, "work-pool", "create", CPU_POOL, "--type", "process", "--overwrite"], run_env, home)
    gpu = [prefect, "work-pool", "create", GPU_POOL, "--type", "kubernetes", "--overwrite"]
    _check_call([*gpu, "--base-job-template", str(GPU_TEMPLATE)], run_env, home)
    # Ingest tasks carry the tag github-api: at most this many talk to GitHub at once (an upsert).
    _check_call([prefect, "concurrency-limit", "create", GITHUB_TAG, str(GITHUB_CONCURRENCY)], run_env, home)
    # Run from the home: a CPU deployment's default pull step is "work in the directory `deploy` ran in".
    _check_call([prefect, "--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_FILE)], run_env, home)


def _check_call(cmd: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(list(cmd), cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise StackError(f"`{Path(cmd[0]).name} {' '.join(cmd[1:4])}` failed: {' | '.join(tail)}")


# The learnable world at the size benchmarks/learn.py measures: 2,400 merged fixes, 2,280 train rows (one
# pass of the learnable-cpu recipe's SFT) and 120 held out.
DEMO_PRS_PER_REPO = 800


def demo_world(home: Path, prs_per_repo: int = DEMO_PRS_PER_REPO) -> Any:
    """The world ``make demo`` serves, under ``home``: the one place that chooses it (the learnable world,
    which a tiny model learns from, so that the demo shows a real before/after). ``prs_per_repo`` below the
    demo's makes a quicker world to deploy against (the tests' stack) that the demo's gate was not measured on."""
    from swerl_core.demo.learnable import build_learnable_world

    return build_learnable_world(home / "learnable-world", prs_per_repo=_world_size(prs_per_repo))


MIN_PRS_PER_REPO = 20  # a 5 % held-out split then keeps at least one pull request of each repository


def _world_size(prs_per_repo: object) -> int:
    """``prs_per_repo`` as a world size, or a :class:`StackError` saying what one is."""
    try:
        size = int(str(prs_per_repo))
    except ValueError:
        size = 0
    if size < MIN_PRS_PER_REPO:
        raise StackError(f"a demo world of {prs_per_repo!r} fixes a repository: it needs a whole number, at least "
                         f"{MIN_PRS_PER_REPO}")  # fmt: skip
    return size


def serve_world(
    stack: Stack,
    token: str,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 300.0,
    prs_per_repo: int = DEMO_PRS_PER_REPO,
) -> str:
    """Serve :func:`demo_world` of ``prs_per_repo`` fixes a repository on 127.0.0.1 in the background (service
    ``github``); returns its API URL.

    A running server of another world (one an older demo started, or another size) is stopped and replaced.
    """
    prs_per_repo = _world_size(prs_per_repo)
    url_file = stack.run_dir / "github.url"
    running = _running(stack, "github")
    if running is not None and _served(url_file)[1] != _world_label(prs_per_repo):
        _stop_group(running, (signal.SIGTERM,))
        running = None
    if running is None:
        url_file.unlink(missing_ok=True)
        stack.run_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "swerl_core.stack", "serve-world", str(prs_per_repo)]
        _launch(stack, "github", cmd, {**(os.environ if env is None else env), "SWERL_DEMO_TOKEN": token})
    deadline = time.monotonic() + timeout_s
    while not url_file.exists():
        if time.monotonic() > deadline or _running(stack, "github") is None:
            raise StackError(f"the demo world's server did not start; see {stack.run_dir / 'github.log'}")
        time.sleep(0.5)
    return _served(url_file)[0]


def _world_label(prs_per_repo: int) -> str:
    """What a world server records of its world: the repositories (comma-separated) and their size."""
    from swerl_core.demo.learnable import REPOS

    return f"{','.join(sorted(REPOS))} {prs_per_repo}"


def _served(url_file: Path) -> tuple[str, str]:
    """The URL and the world's label (:func:`_world_label`) that the world server recorded; blanks when unknown."""
    try:
        lines = url_file.read_text().splitlines()
    except OSError:
        return "", ""
    return (lines[0].strip() if lines else ""), (lines[1].strip() if len(lines) > 1 else "")


def _serve_world_forever(stack: Stack, prs_per_repo: int) -> None:
    from swerl_core.demo.github_server import FakeGitHub

    world = demo_world(stack.home, prs_per_repo)
    with FakeGitHub(world, token=os.environ["SWERL_DEMO_TOKEN"]) as server:
        partial = stack.run_dir / "github.url.partial"
        partial.write_text(f"{server.url}\n{_world_label(prs_per_repo)}\n")
        partial.rename(stack.run_dir / "github.url")
        server.serve_until_signalled()
    (stack.run_dir / "github.url").unlink(missing_ok=True)


def status(stack: Stack) -> dict[str, int | None]:
    """Each service's pid, or ``None`` when it is not running."""
    return {name: _running(stack, name) for name in ("prefect-server", "mlflow", "worker", "github")}


# The demo's gate for its first version: paired, instance by instance, with the model its GRPO run started from
# (the SFT warm start) under the same protocol, rather than an absolute floor that one CPU's arithmetic clears and
# another's does not. Measured on the demo (seed 0, 120 held-out rows, greedy; an answer that does not apply
# counts as malformed): the base model scores -1.000 with 100 % malformed, the recipe's SFT checkpoint -0.271 with
# 63 %, SFT+GRPO +0.093 with 45 %: GRPO's improvement over its base is what passes; the ceiling keeps some room.
DEMO_GATE = {"without_champion": "trained_from", "format_error_ceiling": 0.6}


# The demo's evaluation protocol: the learnable-cpu recipe's sampling (temperature 1.0, top-p 1, its 128-token
# completion budget), K = 4 samples per held-out row (the gate decides on them; a greedy evaluation is judged and
# recorded beside it), 32 prompts per generate call (a tiny model on a CPU is faster in larger batches).
DEMO_EVALUATION = {"samples": 4, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 128, "batch_size": 32}


# The demo runs one repository's tests (its 40 held-out pull requests, validated at curation, each answer run against
# its own test at evaluation): enough for a resolved rate and the reward's calibration per stage on 2 cores. Each fix
# is validated by the test file named after its module, not the repository's 800 test files four times over.
DEMO_EXECUTION = {"environments": [{"repo": "learn/shop", "requirements": ["pytest"], "test_selection": "by_name"}]}


def demo_settings(api_url: str, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The settings file the demo's flows read: the local world's repositories, auto-promotion, evaluation sized for
    a CPU, the tests of one repository run in the sandbox; each section of ``overrides`` updates the demo's."""
    from swerl_core.demo.learnable import HELDOUT_AFTER, REPOS

    chosen: dict[str, Any] = {
        "github": {"api_url": api_url, "seconds_between_requests": 0, "local_clones": True},
        "ingest": {"repos": sorted(REPOS)},
        # One file per prompt: the fixed module is the whole context (prompts of ~100 tokens). Only held-out rows are
        # validated: training needs no tests.
        "curate": {"heldout_after": HELDOUT_AFTER.isoformat(), "relevant_files": 0, "validate": "heldout"},
        "execution": DEMO_EXECUTION,
        "evaluate": dict(DEMO_EVALUATION),
        "store": {"lock_timeout_s": 900},  # a scheduled ingest waits for an evaluation's write
        "registry": {"policy": "auto", **DEMO_GATE},
    }
    for section, values in (overrides or {}).items():
        chosen[section] = {**chosen.get(section, {}), **values}
    return chosen


def reward_line(run_id: str) -> str:
    """The GRPO training reward of MLflow run ``run_id``, first and last step, as one line."""
    from mlflow import MlflowClient

    history = sorted(MlflowClient().get_metric_history(run_id, "reward"), key=lambda m: m.step)
    if not history:
        return "GRPO training reward: not logged"
    first, last = history[0], history[-1]
    return f"GRPO training reward: {first.value:+.3f} at step {first.step} -> {last.value:+.3f} at step {last.step}"


def artifact_rows(data: Any) -> list[dict[str, Any]]:
    """The rows of a Prefect table artifact's data (JSON text or a list); [] for anything else."""
    import json

    rows = json.loads(data) if isinstance(data, str) else data
    return list(rows) if isinstance(rows, list) else []


def triggered_run(client: Any, upstream_id: object, timeout_s: float = 900.0) -> Any:
    """The ``evaluate-register`` flow run the trigger started for train run ``upstream_id``, once it is final."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in client.read_flow_runs():
            if (
                str(run.parameters.get("upstream", "")).endswith(str(upstream_id))
                and run.state
                and run.state.is_final()
            ):
                return run
        time.sleep(2)
    raise TimeoutError(f"no triggered evaluate-register run finished for {upstream_id} in {timeout_s:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m swerl_core.stack up|down|deploy|status``."""
    args = list(sys.argv[1:] if argv is None else argv)
    verb = args[0] if args else "status"
    stack = stack_from_env()
    try:
        if verb == "up":
            start(stack)
            print(NO_LOGIN_NOTICE)
            print(f"Prefect UI: {stack.prefect_url}\nMLflow UI:  {stack.mlflow_url}")
            print(f"Logs and pid files: {stack.run_dir}   (stop with `make down`)")
        elif verb == "down":
            stopped = stop(stack)
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        elif verb == "deploy":
            deploy(stack)
            print(f"work pools {CPU_POOL}, {GPU_POOL} and the deployments of {PREFECT_FILE.name} applied")
            print(f"Deployments: {stack.prefect_url}/deployments")
        elif verb == "serve-world":  # started by serve_world, with the world's size
            _serve_world_forever(stack, _world_size(args[1]) if len(args) > 1 else DEMO_PRS_PER_REPO)
        elif verb == "status":
            for name, pid in status(stack).items():
                print(f"{name}: {'running, pid ' + str(pid) if pid else 'stopped'}")
        else:
            print("usage: python -m swerl_core.stack up|down|deploy|status", file=sys.stderr)
            return 2
    except StackError as exc:
        print(f"swerl stack {verb}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
