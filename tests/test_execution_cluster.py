"""Evaluation's test runs as Kubernetes Jobs (``execution.backend: kubernetes``): the rendered objects pass the
Kubernetes schema and keep the tests away from the mirrors, the network and the API; runs are batched by repository,
count and ConfigMap size; and the pods' two steps, run here as the rendered Job runs them (the volume's ``/data``
read as this home), judge candidates as the local sandbox does, through a Kubernetes API server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from execution_world import BUGGY, FIXED, REPO, calc_instance, diff_of, pytest_settings
from fake_kubernetes import K8S_VERSION, FakeKubernetes

import swerl_core
from swerl_core.config import ConfigError, Settings, load_settings
from swerl_core.config.execution import ExecutionKubernetes, RepoEnvironment
from swerl_core.evaluate.instances import EvalInstance
from swerl_core.evaluate.metrics import SampleResult
from swerl_core.evaluate.resolved import resolve_samples
from swerl_core.execution import (
    ExecutableInstance,
    Limits,
    SandboxUnavailable,
    ensure_environment,
    resolve,
    run_sandboxed,
)
from swerl_core.execution.cluster import CONFIG_MAP_BYTES, batches, render_test_runs, resolve_on_cluster
from swerl_core.execution.pod import read_verdict
from swerl_core.git import mirror_path
from swerl_core.k8s import HOME_MOUNT

RBAC = Path(__file__).resolve().parents[1] / "infra" / "k8s" / "rbac.yaml"
FORK_LOOP = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"


class World:
    """A home holding the mirror of ``acme/calc`` (the bug at its base) and its built environment."""

    def __init__(self, settings: Settings, repo: Path, instance: ExecutableInstance) -> None:
        self.settings, self.repo, self.instance = settings, repo, instance

    def patch(self, content: str) -> str:
        """The candidate turning calc.py into ``content``."""
        return diff_of(self.repo, "calc.py", content)

    def on_cluster(self, fake: FakeKubernetes, folder: Path) -> Settings:
        """These settings with evaluation's test runs sent to ``fake`` (small Jobs: two runs each)."""
        k8s = ExecutionKubernetes(kubeconfig=fake.kubeconfig(folder), batch_size=2, parallelism=2, poll_s=0.05)
        return replace(self.settings, execution=replace(self.settings.execution, backend="kubernetes", kubernetes=k8s))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    # Reachable by any uid, as a pod's volumes are: the pods' tests run as a uid of their own.
    root = Path(tempfile.mkdtemp(prefix="swerl-cluster-"))
    os.chmod(root, 0o755)
    try:
        yield _world(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _world(root: Path) -> World:
    repo = root / "repo"
    instance = calc_instance(repo)
    home = root / "home"
    settings = pytest_settings("test_timeout_s: 8\noutput_mb: 1\ndisk_mb: 32\nprocesses: 64", home=home)
    # The environment is made from an interpreter any uid can run, as an image's /usr/local/bin/python is.
    (declaration,) = settings.execution.environments
    declaration = replace(declaration, python=_interpreter_for_any_uid())
    settings = replace(settings, execution=replace(settings.execution, environments=(declaration,)))
    mirror = mirror_path(settings.mirrors_dir, REPO)
    mirror.parent.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(mirror)], check=True)
    ensure_environment(settings, REPO)
    return World(settings, repo, instance)


def _interpreter_for_any_uid() -> str:
    """A Python 3.11 with venv whose folders any uid may enter: this one's base, else the system's; skips without."""
    for python in (str(Path(sys.base_prefix) / "bin" / "python3"), "/usr/bin/python3.11", "/usr/bin/python3"):
        path = Path(python)
        if path.exists() and all(os.stat(folder).st_mode & 0o001 for folder in path.resolve().parents):
            probe = [python, "-c", "import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 11)"]
            if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
                return python
    pytest.skip("no Python 3.11 with venv that every uid can run (a pod's tests run as a uid of their own)")


@pytest.fixture(scope="module")
def image() -> Iterator[Path]:
    """swerl as an image holds it: a package folder any uid can read (the pods' tests import its pytest plugin)."""
    site = Path(tempfile.mkdtemp(prefix="swerl-image-"))
    os.chmod(site, 0o755)
    shutil.copytree(Path(swerl_core.__file__).parent, site / "swerl_core", ignore=shutil.ignore_patterns("__pycache__"))
    try:
        yield site
    finally:
        shutil.rmtree(site, ignore_errors=True)


def run_pod(objects: dict[tuple[str, str, str], dict[str, Any]], job: dict[str, Any], index: int, home: Path,
            image: Path) -> list[str]:  # fmt: skip
    """Run pod ``index`` of ``job`` here as Kubernetes would: its ConfigMap's files in a folder, its init container's
    command then its container's with swerl from ``image``, ``JOB_COMPLETION_INDEX`` set, the volume's ``/data`` read
    as ``home``, an emptyDir as the work folder; returns the container's log lines."""
    pod = job["spec"]["template"]["spec"]
    (runs_volume,) = [v for v in pod["volumes"] if v["name"] == "runs"]
    config_map = objects[("configmaps", job["metadata"]["namespace"], runs_volume["configMap"]["name"])]
    scratch = Path(tempfile.mkdtemp(prefix="swerl-pod-"))
    try:
        os.chmod(scratch, 0o755)  # what a pod's volumes are to a uid of its own: reachable
        runs, work = scratch / "runs", scratch / "work"
        runs.mkdir()
        work.mkdir(mode=0o777)
        for name, text in config_map["data"].items():
            spec = json.loads(text)
            (runs / name).write_text(json.dumps({**spec, "home": str(home)}))
        env = {**os.environ, "JOB_COMPLETION_INDEX": str(index), "PYTHONPATH": str(image)}
        lines: list[str] = []
        for container in (*pod["initContainers"], *pod["containers"]):
            argv = [sys.executable, *container["command"][1:]]
            argv[argv.index("--work") + 1] = str(work)
            if "--runs" in argv:
                argv[argv.index("--runs") + 1] = str(runs)
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, done.stderr
            lines = done.stdout.splitlines()
        return lines
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def cluster(world: World, image: Path) -> Iterator[FakeKubernetes]:
    """A Kubernetes API server whose Jobs' pods run here, each once (its log read as often as asked)."""
    ran: dict[tuple[str, int], list[str]] = {}
    fake = FakeKubernetes()

    def logs(job: dict[str, Any], index: int) -> list[str]:
        key = (job["metadata"]["name"], index)
        if key not in ran:
            ran[key] = run_pod(fake.objects, job, index, world.settings.home, image)
        return ran[key]

    fake.logs = logs
    with fake:
        yield fake


def test_every_rendered_object_passes_the_schema_and_keeps_the_tests_from_the_mirrors_network_and_api(
    world: World,
) -> None:
    (batch,), refused = batches(world.settings.execution, [(world.instance, world.patch(FIXED))] * 3)
    assert refused == {}
    objects = render_test_runs("swerl-tests-x-0", batch, world.settings.execution)
    for manifest in objects:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    policy, config_map, job = objects
    assert policy["spec"] == {"podSelector": policy["spec"]["podSelector"], "policyTypes": ["Ingress", "Egress"]}
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(config_map["data"]) == ["run-0.json", "run-1.json", "run-2.json"]
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["backoffLimitPerIndex"]) == ("Indexed", 3, 0)
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] >= pod["activeDeadlineSeconds"] > world.settings.execution.test_timeout_s
    (prepare,), (test,) = pod["initContainers"], pod["containers"]
    home_mounts = {c["name"]: [m for m in c["volumeMounts"] if m["name"] == "home"] for c in (prepare, test)}
    assert {m["name"] for m in test["volumeMounts"]} == {"home", "work", "tmp"}, "the tests see another run's spec"
    assert home_mounts["prepare"] == [{"name": "home", "mountPath": HOME_MOUNT, "readOnly": True}]
    (environment,) = home_mounts["test"]
    assert environment["readOnly"] and environment["subPath"].startswith("environments/acme__calc-")
    assert environment["mountPath"] == f"{HOME_MOUNT}/{environment['subPath']}"
    assert prepare["securityContext"]["runAsNonRoot"] and prepare["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "SYS_ADMIN" not in test["securityContext"]["capabilities"]["add"]
    assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in (prepare, test))
    assert test["resources"]["limits"]["memory"] == f"{world.settings.execution.memory_mb + 1024}Mi"


def test_runs_are_batched_by_repository_count_and_configmap_size(world: World) -> None:
    config = replace(world.settings.execution, kubernetes=ExecutionKubernetes(batch_size=2))
    other = replace(world.instance, instance_id="acme__calc-2", repo="Acme/Calc")  # one repository, as GitHub reads it
    runs = [(world.instance, "a"), (other, "b"), (world.instance, "c"), (world.instance, "d"), (other, "e")]
    jobs, refused = batches(config, runs)
    assert [[patch for _, patch in b.runs] for b in jobs] == [["a", "b"], ["c", "d"], ["e"]] and refused == {}
    assert [b.positions for b in jobs] == [(0, 1), (2, 3), (4,)]
    half = "x" * (CONFIG_MAP_BYTES // 2)
    jobs, _ = batches(config, [(world.instance, half), (world.instance, half)])
    assert [b.positions for b in jobs] == [(0,), (1,)]
    stranger = replace(world.instance, repo="other/repo")
    jobs, refused = batches(config, [(world.instance, "x" * CONFIG_MAP_BYTES), (stranger, "a"), (world.instance, "b")])
    assert [b.positions for b in jobs] == [(2,)]
    assert refused[0][0] == refused[1][0] == "not_run"
    assert "too large for a Kubernetes ConfigMap" in refused[0][1]
    assert refused[1][1] == "other/repo declares no execution environment"


@pytest.mark.slow
def test_the_pods_judge_candidates_as_the_local_sandbox_does(
    world: World, cluster: FakeKubernetes, tmp_path: Path
) -> None:
    outside = Path(tempfile.mkdtemp(prefix="swerl-outside-"))
    os.chmod(outside, 0o755)
    hostile = textwrap.dedent(f"""\
        import pathlib
        try:
            pathlib.Path({str(outside / "escaped")!r}).write_text("escaped")
        except OSError:
            pass
        """)
    candidates = {
        "gold": world.patch(FIXED),
        "no-op": world.patch(BUGGY + "\n"),
        "does-not-apply": "--- a/calc.py\n+++ b/calc.py\n@@ -7 +7 @@\n-nothing\n+here\n",
        "forks-forever": world.patch(
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
        ),
        "writes-outside": world.patch(hostile + FIXED),
    }
    runs = [(world.instance, patch) for patch in candidates.values()]
    settings = world.on_cluster(cluster, tmp_path)
    verdicts = resolve_on_cluster(settings.execution, settings.home, runs)
    here = [resolve(world.settings, world.instance, mirror_path(world.settings.mirrors_dir, REPO), p, tmp_path / str(n))
            for n, (_, p) in enumerate(runs)]  # fmt: skip
    assert [reason for reason, _ in verdicts] == [r.reason for r in here], verdicts
    assert dict(zip(candidates, (reason for reason, _ in verdicts), strict=True)) == {
        "gold": "resolved",
        "no-op": "tests_failed",
        "does-not-apply": "did_not_apply",
        "forks-forever": "timed_out",
        "writes-outside": "resolved",
    }
    assert list(outside.iterdir()) == [], "a candidate wrote outside its tree"
    jobs = [path.rsplit("/", 1)[1] for method, path, _ in cluster.requests if method == "DELETE" and "/jobs/" in path]
    assert len(jobs) == 3, "five runs in Jobs of two"
    assert [kind for kind in cluster.kinds()] == ["NetworkPolicy"], "a Job or its ConfigMap was left on the cluster"
    assert not cluster.not_granted(RBAC), f"not granted by infra/k8s/rbac.yaml: {sorted(cluster.not_granted(RBAC))}"
    assert sorted(p.name for p in (settings.home / "k8s").iterdir()) == sorted(jobs)
    shutil.rmtree(outside)


def test_a_pod_that_ends_without_a_verdict_leaves_its_run_not_run_and_the_others_judged(
    world: World, tmp_path: Path
) -> None:
    def logs(job: dict[str, Any], index: int) -> list[str]:
        if index == 0:
            return ["Killed"]
        return [_verdict(index, "resolved")]

    with FakeKubernetes(outcome="failed", logs=logs) as fake:
        settings = world.on_cluster(fake, tmp_path)
        verdicts = resolve_on_cluster(settings.execution, settings.home, [(world.instance, "a"), (world.instance, "b")])
    assert verdicts[1] == ("resolved", "")
    reason, detail = verdicts[0]
    assert reason == "not_run" and "printed no verdict (the job failed: BackoffLimitExceeded" in detail, detail


def test_an_unreachable_cluster_leaves_every_answer_not_run_and_the_evaluation_goes_on(
    world: World, tmp_path: Path
) -> None:
    with FakeKubernetes() as fake:
        settings = world.on_cluster(fake, tmp_path)
    instance = EvalInstance(world.instance.instance_id, REPO, "", {}, {}, world.instance.base_commit, world.instance)
    results = [
        SampleResult(instance.instance_id, REPO, n, "", 0.5, None, True, (), world.patch(FIXED) + " " * n, 10)
        for n in range(2)
    ]
    said: list[str] = []
    judged = resolve_samples(settings, [instance], results, lambda text, *_: said.append(text))
    assert [r.resolution for r in judged] == ["not_run", "not_run"]
    assert judged[0].resolution_detail.startswith("K8sError: Kubernetes API at http://127.0.0.1:"), judged[0]
    assert said[0] == "resolved: 0/2 distinct answers run against their tests"


def test_a_verdict_line_is_read_and_a_malformed_one_refused() -> None:
    assert read_verdict("collected 2 items") is None
    assert read_verdict('swerl-verdict {"index": 3, "reason": "crashed", "detail": "d"}') == {
        "index": 3, "reason": "crashed", "detail": "d"}  # fmt: skip
    odd = [
        '{"index": "3"}',
        "[1]",
        "{",
        '{"index": -1, "reason": "resolved", "detail": ""}',
        '{"index": true, "reason": "resolved", "detail": ""}',
        '{"index": 0, "reason": "great", "detail": ""}',
    ]
    for bad in ("swerl-verdict " + line for line in odd):
        with pytest.raises(ValueError):
            read_verdict(bad)


def test_container_isolation_runs_as_a_uid_of_its_own_and_leaves_no_process_or_file_behind() -> None:
    folder = Path(tempfile.mkdtemp(prefix="swerl-container-"))
    try:
        os.chmod(folder, 0o755)  # root's, reachable: as the pod's scratch folder is once its test step starts
        tree = folder / "tree"
        tree.mkdir()
        daemon = (
            "import os, tempfile, time\n"
            "open('/tmp/swerl-left-' + str(os.getuid()), 'w').write('x')\n"
            "open(os.path.join(tempfile.gettempdir(), 'scratch'), 'w').write('x')\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    open('daemon.pid', 'w').write(str(os.getpid()))\n"
            "    time.sleep(600)\n"
            "time.sleep(1)\n"
            "print(os.getuid())\n"
        )
        result = run_sandboxed(
            [_interpreter_for_any_uid(), "-c", daemon], tree, Limits(wall_s=30), isolation="container"
        )
        assert result.exit_code == 0, result.stderr
        uid = int(result.stdout)
        assert uid >= 1_000_000, "the command ran as the caller"
        pid = int((tree / "daemon.pid").read_text())
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        assert (tree.stat().st_uid, (tree / "daemon.pid").stat().st_uid) == (0, 0), "the tree was not taken back"
        assert not Path(f"/tmp/swerl-left-{uid}").exists(), "a file the run left in /tmp stayed"
        assert sorted(p.name for p in folder.iterdir()) == ["tree"], "the run's temporary folder stayed"
        python = _interpreter_for_any_uid()
        filler = (
            "import os, tempfile\nopen(os.path.join(tempfile.gettempdir(), 'big'), 'wb').write(os.urandom(32 << 20))"
        )
        full = run_sandboxed(
            [python, "-c", filler + "\nimport time\ntime.sleep(60)"],
            tree,
            Limits(wall_s=30, disk_bytes=8 << 20),
            isolation="container",
        )
        assert full.stopped_by == "disk", "the run's temporary folder is outside the disk bound"
        os.chmod(folder, 0o777)  # a folder the run's uid could swap the tree in
        with pytest.raises(SandboxUnavailable, match="writable by their owners only"):
            run_sandboxed(["true"], tree, isolation="container")
    finally:
        shutil.rmtree(folder)


def test_a_broken_or_foreign_verdict_and_a_lost_job_leave_only_their_runs_not_run(world: World, tmp_path: Path) -> None:
    def logs(job: dict[str, Any], index: int) -> list[str]:
        if job["metadata"]["name"].endswith("-0"):  # the first Job: one pod breaks its line, one names another run
            return ["swerl-verdict {"] if index == 0 else [_verdict(0, "resolved")]
        return [_verdict(index, "tests_failed")]

    with FakeKubernetes(logs=logs) as fake:
        settings = world.on_cluster(fake, tmp_path)
        verdicts = resolve_on_cluster(settings.execution, settings.home, [(world.instance, p) for p in "abcd"])
        assert fake.kinds() == ["NetworkPolicy"]
    assert [reason for reason, _ in verdicts] == ["not_run", "not_run", "tests_failed", "tests_failed"]
    assert "printed a broken verdict" in verdicts[0][1] and "printed the verdict of run 0" in verdicts[1][1]
    with FakeKubernetes(outcome="hang") as fake:
        (tmp_path / "hang").mkdir()
        settings = world.on_cluster(fake, tmp_path / "hang")
        hung = replace(settings.execution, kubernetes=replace(settings.execution.kubernetes, timeout_s=0.5))
        verdicts = resolve_on_cluster(hung, settings.home, [(world.instance, "a")])
        assert fake.kinds() == ["NetworkPolicy"], "the Job given up on was left running"
    ((reason, detail),) = verdicts
    assert reason == "not_run" and detail.startswith("K8sError: job swerl/swerl-tests-"), detail
    assert detail.endswith("still running after 0.5 s"), detail


def _verdict(index: int, reason: str) -> str:
    return "swerl-verdict " + json.dumps({"index": index, "reason": reason, "detail": ""})


def test_the_backend_and_its_cluster_settings_are_checked_and_an_image_leaves_the_environment_as_built() -> None:
    with pytest.raises(ConfigError, match=r"execution.backend .*'docker' is not one of local, kubernetes"):
        load_settings(env={"SWERL_EXECUTION__BACKEND": "docker"})
    with pytest.raises(ConfigError, match=r"execution.kubernetes.batch_size"):
        load_settings(env={"SWERL_EXECUTION__KUBERNETES__BATCH_SIZE": "0"})
    assert load_settings(env={"SWERL_EXECUTION__BACKEND": "kubernetes"}).execution.backend == "kubernetes"
    assert RepoEnvironment(repo=REPO, image="registry.example/calc:1").digest == RepoEnvironment(repo=REPO).digest
