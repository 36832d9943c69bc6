"""Kubernetes manifests rendered from the recipes: OpenAPI-valid, sized by the recipe, and a launch line that
really rendezvouses 2 nodes × 8 processes into ranks 0–15 (torchrun on this machine, a probe in place of training)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from fake_kubernetes import FakeKubernetes

from swerl_core.cli import main
from swerl_core.config import ConfigError
from swerl_core.k8s import ClusterAccess, JobState, K8sError, follow_job, job_logs, job_state
from swerl_core.train.config import load_train_config, train_config_from_dict
from swerl_core.train.distributed import free_port
from swerl_core.train.k8s import ClusterLayout, render_training, submit_training, torchrun_command
from swerl_core.train.k8s.layout import cluster_recipe

ROOT = Path(__file__).resolve().parents[1]
RBAC = ROOT / "infra" / "k8s" / "rbac.yaml"
RECIPES = ["llama3-8b", "llama3-70b"]
K8S_VERSION = "1.37.0"


def _recipe(name: str):
    return load_train_config(ROOT / "deployments" / "configs" / f"{name}.yaml")


def _by_kind(manifests: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for manifest in manifests:
        out.setdefault(manifest["kind"], []).append(manifest)
    return out


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_rendered_manifest_passes_the_kubernetes_openapi_schema(recipe: str) -> None:
    manifests = render_training(_recipe(recipe), ClusterLayout(nodes=2, run_name=f"{recipe}-grpo"))
    assert sorted(m["kind"] for m in manifests) == [
        "ConfigMap", "Deployment", "Job", "NetworkPolicy", "PersistentVolumeClaim", "Service", "Service"
    ]  # fmt: skip
    for manifest in manifests:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)  # raises ValidationError


def test_static_k8s_files_pass_the_kubernetes_openapi_schema() -> None:
    for path in sorted((ROOT / "infra" / "k8s").glob("*.yaml")):
        for manifest in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_cluster_recipe_in_the_config_map_is_laid_out_for_nodes_times_gpus() -> None:
    cfg = _recipe("llama3-8b")
    kinds = _by_kind(render_training(cfg, ClusterLayout(nodes=2, gpus_per_node=8)))
    shipped = train_config_from_dict(yaml.safe_load(kinds["ConfigMap"][0]["data"]["recipe.yaml"]))
    assert shipped.world_size == 16
    assert shipped.grpo_gradient_accumulation_steps == 512 // (4 * 16)
    assert shipped.grpo == cfg.grpo and shipped.rollout == cfg.rollout


def test_a_node_count_that_breaks_the_batch_layout_is_refused() -> None:
    # 3 × 8 = 24 processes × 4 completions do not divide the 512 completions of a step.
    with pytest.raises(ConfigError, match="does not fit 3 node"):
        render_training(_recipe("llama3-8b"), ClusterLayout(nodes=3))


def test_training_job_is_indexed_with_one_pod_per_node_and_all_its_gpus() -> None:
    layout = ClusterLayout(nodes=2, run_name="r8b")
    kinds = _by_kind(render_training(_recipe("llama3-8b"), layout))
    job = kinds["Job"][0]["spec"]
    pod = job["template"]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 2, 2)
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 8
    # TRL 1.16: the vLLM workers join the weight-sync group that the trainer's rank 0 hosts on its own pod.
    assert {"name": "weight-sync", "containerPort": 51216} in pod["containers"][0]["ports"]
    headless = next(s for s in kinds["Service"] if s["metadata"]["name"] == pod["subdomain"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= job["template"]["metadata"]["labels"].items()


def test_launch_line_for_2x8_has_world_size_16_and_rendezvous_at_pod_zero() -> None:
    from torch.distributed.run import get_args_parser

    layout = ClusterLayout(nodes=2, gpus_per_node=8, run_name="r8b", namespace="ml")
    cfg = cluster_recipe(_recipe("llama3-8b"), layout)
    args = get_args_parser().parse_args(torchrun_command(cfg, layout)[1:])
    assert int(args.nnodes) * int(args.nproc_per_node) == cfg.world_size == 16
    assert args.rdzv_backend == "c10d"
    # Indexed Job pod 0 is <job>-0, reachable as <hostname>.<subdomain>.<namespace>.svc
    assert args.rdzv_endpoint == "r8b-0.r8b.ml.svc:29500"
    assert args.rdzv_id == "r8b" and args.module
    assert args.training_script == "swerl_core.train.followed"
    train_args = args.training_script_args
    assert train_args[train_args.index("--recipe") + 1] == "/etc/swerl/recipe.yaml"
    assert train_args[train_args.index("--run-name") + 1] == "r8b"
    assert train_args[train_args.index("--stage") + 1] == "grpo"
    # The pods' trainer takes exactly these flags (and reads its settings from the environment).
    from swerl_core.train.followed import main as followed_main

    with pytest.raises(SystemExit) as usage:
        followed_main([*train_args, "--help"])
    assert usage.value.code == 0


@pytest.mark.slow
def test_rendered_launch_line_rendezvouses_two_nodes_into_ranks_0_to_15(tmp_path: Path) -> None:
    layout = ClusterLayout(nodes=2, gpus_per_node=8, run_name="r8b")
    command = torchrun_command(cluster_recipe(_recipe("llama3-8b"), layout), layout)
    # Same launcher flags, rendezvous on this machine, a probe that records each worker's environment.
    launcher = [a.replace(f"{layout.head_host}:", "127.0.0.1:") for a in command[1 : command.index("-m")]]
    launcher = [
        a if not a.startswith("--rdzv-endpoint") else f"--rdzv-endpoint=127.0.0.1:{free_port()}" for a in launcher
    ]
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, os, sys\n"
        "keys = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'GROUP_RANK', 'TORCHELASTIC_RUN_ID')\n"
        "out = os.path.join(sys.argv[1], os.environ['RANK'] + '.json')\n"
        "open(out, 'w').write(json.dumps({k: os.environ[k] for k in keys}))\n"
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", *launcher, str(probe), str(tmp_path)]
    nodes = [subprocess.Popen(torchrun, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [node.communicate(timeout=110)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    workers = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert sorted(int(w["RANK"]) for w in workers) == list(range(16))
    assert {w["WORLD_SIZE"] for w in workers} == {"16"} and {w["TORCHELASTIC_RUN_ID"] for w in workers} == {"r8b"}
    for group in ("0", "1"):
        assert sorted(int(w["LOCAL_RANK"]) for w in workers if w["GROUP_RANK"] == group) == list(range(8))


@pytest.mark.parametrize(("recipe", "tp", "dp"), [("llama3-8b", 1, 8), ("llama3-70b", 4, 2)])
def test_rollout_server_takes_its_parallelism_from_the_recipe(recipe: str, tp: int, dp: int) -> None:
    cfg = _recipe(recipe)
    kinds = _by_kind(render_training(cfg, ClusterLayout(nodes=2)))
    deployment = kinds["Deployment"][0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    flags = dict(zip(container["args"][::2], container["args"][1::2], strict=True))
    assert (int(flags["--tensor-parallel-size"]), int(flags["--data-parallel-size"])) == (tp, dp)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == tp * dp
    assert flags["--model"] == cfg.base_model
    assert int(flags["--max-model-len"]) == cfg.max_prompt_length + cfg.max_completion_length
    # The trainer reaches grpo.vllm_server_url = http://rollout-0:8000: a Service of that name and port.
    service = next(s for s in kinds["Service"] if s["metadata"]["name"] == "rollout-0")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    assert container["ports"] == [{"name": "http", "containerPort": 8000}] and flags["--port"] == "8000"
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}  # vLLM's own endpoint


def test_only_the_runs_training_pods_may_reach_its_rollout_server() -> None:
    """``swerl-rollout`` listens on every address and serves vLLM's development endpoints (weights loaded from disk,
    methods run in its workers): the render admits nothing but the run's own trainer pods."""
    kinds = _by_kind(render_training(_recipe("llama3-8b"), ClusterLayout(nodes=2, run_name="r8b")))
    [policy] = kinds["NetworkPolicy"]
    [deployment], job = kinds["Deployment"], kinds["Job"][0]
    assert policy["spec"]["podSelector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule == {"from": [{"podSelector": {"matchLabels": job["spec"]["template"]["metadata"]["labels"]}}]}


def test_recipe_without_a_rollout_server_is_refused() -> None:
    cfg = load_train_config(ROOT / "deployments" / "configs" / "demo-cpu.yaml")
    with pytest.raises(ConfigError, match="grpo.vllm_server_url"):
        render_training(cfg, ClusterLayout(nodes=1, gpus_per_node=1))


def test_job_state_reads_conditions_and_pod_counts() -> None:
    assert job_state({"status": {}}).phase == "pending"
    assert job_state({"status": {"active": 2}}).phase == "running"
    done = {"status": {"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}}
    assert job_state(done).phase == "succeeded" and job_state(done).succeeded == 2
    failed = {
        "status": {
            "failed": 1,
            "conditions": [
                {"type": "FailureTarget", "status": "True"},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "limit reached"},
            ],
        }
    }
    assert (job_state(failed).phase, job_state(failed).message, job_state(failed).done) == (
        "failed",
        "BackoffLimitExceeded: limit reached",
        True,
    )


@pytest.fixture
def unreachable_cluster(tmp_path: Path) -> ClusterAccess:
    """A kubeconfig whose API server address has nothing listening."""
    config = tmp_path / "kubeconfig"
    cluster = {"server": f"http://127.0.0.1:{free_port()}"}
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": cluster}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "users": [{"name": "none", "user": {}}],
                "current-context": "none",
            }
        )
    )
    return ClusterAccess(config)


def test_following_a_job_without_a_reachable_cluster_fails_with_one_line(unreachable_cluster: ClusterAccess) -> None:
    with pytest.raises(K8sError, match=r"^Kubernetes API at http://127.0.0.1:\d+ is unreachable \(reading job") as err:
        follow_job("r8b", "swerl", unreachable_cluster, poll_s=0.1, timeout_s=5)
    assert "\n" not in str(err.value)


def test_submitting_without_a_reachable_cluster_keeps_the_manifests_and_fails_with_one_line(
    tmp_path: Path, unreachable_cluster: ClusterAccess
) -> None:
    out = tmp_path / "run"
    with pytest.raises(K8sError, match=r"is unreachable \(PersistentVolumeClaim swerl/swerl-home\)") as err:
        submit_training(_recipe("llama3-8b"), ClusterLayout(nodes=2, run_name="r8b"), out, unreachable_cluster)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in out.iterdir())[-1] == "06-job-r8b.yaml"


def test_without_any_credentials_the_error_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(K8sError, match=r"^no Kubernetes credentials"):
        follow_job("r8b", "swerl", poll_s=0.1)
    with pytest.raises(K8sError, match=r"^cannot use kubeconfig .*absent"):
        follow_job("r8b", "swerl", ClusterAccess(tmp_path / "absent"), poll_s=0.1)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("root:x:0:0:root:/root:/bin/bash\n", "cannot use kubeconfig"),  # a text file, not YAML mappings
        ("- a\n- b\n", "cannot use kubeconfig"),  # YAML, but a list
        (None, "not a file"),  # a directory
    ],
)
def test_a_kubeconfig_that_is_not_one_is_one_line(tmp_path: Path, content: str | None, why: str) -> None:
    path = tmp_path / "kubeconfig"
    path.mkdir() if content is None else path.write_text(content)
    with pytest.raises(K8sError, match=why) as err:
        follow_job("r8b", "swerl", ClusterAccess(path), poll_s=0.1)
    assert "\n" not in str(err.value)


def _pod_lines(job: dict, index: int) -> list[str]:
    return [f"node {index} of {job['spec']['completions']} up", f"node {index} done"]


def test_submitted_objects_reach_the_api_and_the_job_is_followed_to_success_with_pod_logs(tmp_path: Path) -> None:
    layout = ClusterLayout(nodes=2, run_name="r8b", snapshot_id="snap-1")
    changes: list[JobState] = []
    lines: list[tuple[str, str]] = []
    with FakeKubernetes(logs=_pod_lines) as api:
        access = ClusterAccess(api.kubeconfig(tmp_path))
        submit_training(_recipe("llama3-8b"), layout, tmp_path / "run", access)
        assert api.kinds() == [
            "PersistentVolumeClaim", "ConfigMap", "Service", "NetworkPolicy", "Deployment", "Service", "Job"
        ]  # fmt: skip
        # Everything but the Job is applied server-side (created or updated in place); the Job is created.
        kinds = {(method, content) for method, _, content in api.requests}
        assert kinds == {("PATCH", "application/apply-patch+yaml"), ("POST", "application/json")}
        state = follow_job("r8b", "swerl", access, poll_s=0.01, on_change=changes.append,
                           on_log=lambda pod, line: lines.append((pod, line)))  # fmt: skip
        tails = job_logs("r8b", "swerl", access, tail=1)
    assert [c.phase for c in changes] == ["running", "succeeded"] and state.succeeded == 2
    assert sorted(lines) == [("r8b-0-x0z", "node 0 done"), ("r8b-0-x0z", "node 0 of 2 up"),
                             ("r8b-1-x1z", "node 1 done"), ("r8b-1-x1z", "node 1 of 2 up")]  # fmt: skip
    assert tails.splitlines() == ["[r8b-0-x0z] node 0 done", "[r8b-1-x1z] node 1 done"]


def test_a_failed_job_reports_kubernetes_reason_and_how_its_pod_ended(tmp_path: Path) -> None:
    with FakeKubernetes(outcome="failed") as api:
        access = ClusterAccess(api.kubeconfig(tmp_path))
        submit_training(_recipe("llama3-8b"), ClusterLayout(nodes=2, run_name="r8b"), tmp_path / "run", access)
        state = follow_job("r8b", "swerl", access, poll_s=0.01)
    assert state.phase == "failed"
    assert state.message == (
        "BackoffLimitExceeded: Job has reached the specified backoff limit; "
        "pod r8b-0-x0z: trainer exited with code 1 (Error)"
    )


def test_a_job_that_disappears_while_followed_is_a_clear_error(tmp_path: Path) -> None:
    with FakeKubernetes(outcome="vanish") as api:
        access = ClusterAccess(api.kubeconfig(tmp_path))
        submit_training(_recipe("llama3-8b"), ClusterLayout(nodes=2, run_name="r8b"), tmp_path / "run", access)
        with pytest.raises(K8sError, match=r"^job swerl/r8b does not exist \(deleted, or never created\)$"):
            follow_job("r8b", "swerl", access, poll_s=0.01)


def test_a_job_still_running_when_the_timeout_passes_is_a_clear_error(tmp_path: Path) -> None:
    with FakeKubernetes(outcome="hang") as api:
        access = ClusterAccess(api.kubeconfig(tmp_path))
        submit_training(_recipe("llama3-8b"), ClusterLayout(nodes=2, run_name="r8b"), tmp_path / "run", access)
        with pytest.raises(K8sError, match=r"^job swerl/r8b still running after 0.3 s$"):
            follow_job("r8b", "swerl", access, poll_s=0.05, timeout_s=0.3, on_log=lambda pod, line: None)


def test_a_failing_callback_stops_the_following_and_reaches_the_caller(tmp_path: Path) -> None:
    def refuse(state: JobState) -> None:
        raise RuntimeError(f"caller gave up at {state.phase}")

    with FakeKubernetes(outcome="hang") as api:
        access = ClusterAccess(api.kubeconfig(tmp_path))
        submit_training(_recipe("llama3-8b"), ClusterLayout(nodes=2, run_name="r8b"), tmp_path / "run", access)
        with pytest.raises(RuntimeError, match="caller gave up at running"):
            follow_job("r8b", "swerl", access, poll_s=0.05, on_change=refuse)
        reads = api.job_reads[("swerl", "r8b")]
        time.sleep(0.3)
        assert api.job_reads[("swerl", "r8b")] == reads, "the Job is still being read after the caller stopped"


def test_a_second_job_of_the_same_name_is_refused(tmp_path: Path) -> None:
    with FakeKubernetes() as api:
        access = ClusterAccess(api.kubeconfig(tmp_path))
        layout = ClusterLayout(nodes=2, run_name="r8b")
        submit_training(_recipe("llama3-8b"), layout, tmp_path / "a", access)
        with pytest.raises(K8sError, match=r"^job swerl/r8b already exists: a new run needs a new name$"):
            submit_training(_recipe("llama3-8b"), layout, tmp_path / "b", access)


def test_an_object_the_api_refuses_names_it_and_the_reason(tmp_path: Path) -> None:
    from swerl_core.k8s import apply_manifests

    with FakeKubernetes() as api:
        bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "swerl"}, "data": 3}
        with pytest.raises(K8sError, match=r"^Kubernetes API refused ConfigMap swerl/x: HTTP 422 ConfigMap is invalid"):
            apply_manifests([bad], ClusterAccess(api.kubeconfig(tmp_path)))


def test_a_server_side_dry_run_sends_every_object_and_creates_none(tmp_path: Path) -> None:
    from swerl_core.k8s import apply_manifests

    manifests = render_training(_recipe("llama3-8b"), ClusterLayout(nodes=2, run_name="r8b"))
    with FakeKubernetes() as api:
        report = apply_manifests(manifests, ClusterAccess(api.kubeconfig(tmp_path)), dry_run=True)
    assert report[-1] == "Job/r8b created" and len(report) == 7
    assert api.kinds() == [] and len(api.requests) == 7


def test_an_sft_stage_runs_without_a_rollout_server() -> None:
    layout = ClusterLayout(nodes=1, run_name="sft", stage="sft", snapshot_id="s", base_model="/data/models/base")
    manifests = render_training(_recipe("llama3-8b"), layout)
    assert [m["kind"] for m in manifests] == ["PersistentVolumeClaim", "ConfigMap", "Service", "Job"]
    command = manifests[-1]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--stage") + 1] == "sft"
    assert command[command.index("--model") + 1] == "/data/models/base"
    for manifest in manifests:
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_render_k8s_verb_writes_one_file_per_object(tmp_path: Path, capsys) -> None:
    recipe = ROOT / "deployments" / "configs" / "llama3-70b.yaml"
    code = main(
        [
            "--home",
            str(tmp_path / "home"),
            "render-k8s",
            "--recipe",
            str(recipe),
            "--nodes",
            "4",
            "--out",
            str(tmp_path / "k8s"),
        ]
    )
    assert code == 0
    files = sorted(p.name for p in (tmp_path / "k8s").iterdir())
    assert files[-1] == "06-job-llama3-70b-grpo.yaml" and len(files) == 7
    job = yaml.safe_load((tmp_path / "k8s" / files[-1]).read_text())
    assert job["spec"]["completions"] == 4
    assert "world size 32 = 4 node(s) × 8 GPUs" in capsys.readouterr().out


def test_render_k8s_verb_refuses_a_bad_node_count_with_one_line(tmp_path: Path, capsys) -> None:
    recipe = ROOT / "deployments" / "configs" / "llama3-8b.yaml"
    code = main(["render-k8s", "--recipe", str(recipe), "--nodes", "3", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("swerl render-k8s:") and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_render_k8s_verb_refuses_a_folder_holding_another_runs_manifests(tmp_path: Path, capsys) -> None:
    recipe = str(ROOT / "deployments" / "configs" / "llama3-8b.yaml")
    out = tmp_path / "k8s"
    render = ["--home", str(tmp_path / "home"), "render-k8s", "--recipe", recipe, "--nodes", "2", "--out", str(out)]
    assert main([*render, "--run-name", "a"]) == 0
    assert main([*render, "--run-name", "a"]) == 0  # the same run again: its own files, rewritten
    before = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    code = main([*render, "--run-name", "b"])  # `kubectl apply -f` on the folder would start both Jobs
    err = capsys.readouterr().err
    assert code != 0 and "already holds other manifests" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == before
    (tmp_path / "file").write_text("x")
    assert main([*render[:-1], str(tmp_path / "file")]) != 0
    assert "is not a folder" in capsys.readouterr().err


def test_the_swerl_role_allows_every_request_a_followed_run_makes(tmp_path: Path) -> None:
    with FakeKubernetes(logs=_pod_lines) as api:
        access = ClusterAccess(api.kubeconfig(tmp_path))
        submit_training(_recipe("llama3-8b"), ClusterLayout(nodes=2, run_name="r8b"), tmp_path / "run", access)
        follow_job("r8b", "swerl", access, poll_s=0.01, on_log=lambda pod, line: None)
        job_logs("r8b", "swerl", access)
    assert ("batch", "jobs", "create") in api.needed() and ("", "pods/log", "get") in api.needed()
    assert not api.not_granted(RBAC), f"not granted by infra/k8s/rbac.yaml: {sorted(api.not_granted(RBAC))}"


def _result_record(run: str, **changes: object) -> dict:
    """A training process's result record, as the pods print it (paths under /data)."""
    from swerl_core.train.result import TrainResult

    result = TrainResult(run, "abc", "grpo", "snap-1", "/data/models/sft", Path(f"/data/checkpoints/{run}"),
                         Path(f"/data/checkpoints/{run}/final"), 2, 8, 0, 3.5, {"reward": 0.5},
                         f"s3://swerl/data/checkpoints/{run}/final")  # fmt: skip
    return {**json.loads(result.as_json()), **changes}


def _training_pod(job: dict, index: int) -> list[str]:
    from swerl_core.progress import Progress
    from swerl_core.train.followed import PROGRESS_MARK, RESULT_MARK

    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    run = command[command.index("--run-name") + 1]
    steps = [PROGRESS_MARK + Progress("train", s, 2, f"step {s}/2", {"reward": s / 4}).as_json() for s in (1, 2)]
    return [f"rank group {index} ready", *steps, RESULT_MARK + json.dumps(_result_record(run))]


def test_train_on_cluster_returns_the_run_with_local_paths_and_reports_each_step_once_in_the_callers_thread(
    tmp_path: Path,
) -> None:
    import asyncio
    import threading

    from swerl_core.config import load_settings
    from swerl_core.train import TrainRequest
    from swerl_core.train import run as train

    seen: list[tuple[int, bool, float]] = []

    def on_progress(event) -> None:  # noqa: ANN001
        try:
            asyncio.get_running_loop()
            in_loop = True
        except RuntimeError:
            in_loop = False
        assert threading.current_thread() is threading.main_thread() and not in_loop
        seen.append((event.step, in_loop, event.metrics["reward"]))

    home = tmp_path / "home"
    with FakeKubernetes(logs=_training_pod) as api:
        settings = load_settings(env={}, overrides={"home": str(home), "train.launcher": "kubernetes",
            "train.kubernetes.kubeconfig": str(api.kubeconfig(tmp_path)), "train.kubernetes.nodes": 2,
            "train.kubernetes.poll_s": 0.01})  # fmt: skip
        recipe = _recipe("llama3-8b")
        request = TrainRequest(recipe, "grpo", "snap-1", run_name="Llama3_8B-grpo-snap-1-20261202-010000",
                               base_model=str(home / "models" / "sft"))  # fmt: skip
        run = train(settings, request, on_progress)
    assert seen == [(1, False, 0.25), (2, False, 0.5)]  # two pods print both steps; each step is reported once
    name = "llama3-8b-grpo-snap-1-20261202-010000"  # the run name as a Job name
    assert (run.run_name, run.model_dir, run.checkpoint_dir) == (name, home / "checkpoints" / name / "final",
                                                                 home / "checkpoints" / name)  # fmt: skip
    assert run.checkpoint_uri == f"s3://swerl/data/checkpoints/{name}/final"  # published by the pods (storage.uri)
    assert (run.restarts, run.resumed_from_steps) == (0, ())
    (job_manifest,) = [obj for (kind, _, _), obj in api.objects.items() if kind == "jobs"]
    command = job_manifest["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--model") + 1] == "/data/models/sft"  # the base model as the pods see it
    assert job_manifest["spec"]["completions"] == 2
    assert sorted(p.name for p in (home / "k8s" / name).iterdir())[-1] == f"06-job-{name}.yaml"


@pytest.mark.parametrize(
    ("changes", "lacking", "says"),
    [
        ({}, ("checkpoint_dir", "model_dir"), "result line lacks checkpoint_dir, model_dir"),
        ({"checkpoint_dir": "/data/../../etc"}, (), "not under /data"),
        ({"steps": "two"}, (), "an integer steps"),
    ],
)
def test_pods_that_print_odd_records_end_in_one_line_not_a_crash(
    tmp_path: Path, changes: dict, lacking: tuple[str, ...], says: str
) -> None:
    from swerl_core.config import load_settings
    from swerl_core.train import TrainRequest
    from swerl_core.train import run as train
    from swerl_core.train.followed import PROGRESS_MARK, RESULT_MARK

    def pods(job: dict, index: int) -> list[str]:
        good = {"stage": "train", "step": 1, "total": 2, "message": "step 1/2"}
        odd_steps = [PROGRESS_MARK + "{}", PROGRESS_MARK + json.dumps({"step": "x"}), PROGRESS_MARK + json.dumps(good)]
        record = {k: v for k, v in _result_record("odd-run", **changes).items() if k not in lacking}
        return [*odd_steps, RESULT_MARK + json.dumps(record)]

    steps: list[int] = []
    home = tmp_path / "home"
    with FakeKubernetes(logs=pods) as api:
        settings = load_settings(env={}, overrides={"home": str(home), "train.launcher": "kubernetes",
            "train.kubernetes.kubeconfig": str(api.kubeconfig(tmp_path)), "train.kubernetes.poll_s": 0.01})  # fmt: skip
        request = TrainRequest(_recipe("llama3-8b"), "grpo", "s", run_name="odd-run")
        with pytest.raises(K8sError, match=says) as err:
            train(settings, request, lambda event: steps.append(event.step))
    assert "\n" not in str(err.value)
    assert steps == [1]  # the records without an integer step are skipped, the good one is reported


@pytest.mark.parametrize(
    ("sync", "weights_dir", "flags"),
    [
        ("nccl", None, ["--weight-sync", "nccl"]),
        ("directory", None, ["--weight-sync", "directory", "--weights-dir", "/data"]),
        ("directory", "shared/weights", ["--weight-sync", "directory", "--weights-dir", "/data"]),
    ],
)
def test_rollout_server_is_told_how_weights_arrive(sync: str, weights_dir: str | None, flags: list[str]) -> None:
    cfg = _recipe("llama3-8b")
    cfg = replace(cfg, grpo=replace(cfg.grpo, vllm_weight_sync=sync, vllm_weights_dir=weights_dir))
    deployment = _by_kind(render_training(cfg, ClusterLayout(nodes=2)))["Deployment"][0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-len(flags) :] == flags
    # Directory sync: the trainer writes inside SWERL_HOME, which the rollout pod mounts at the same path.
    assert {"name": "home", "mountPath": "/data"} in container["volumeMounts"]


def test_directory_sync_outside_the_shared_home_is_refused_on_kubernetes() -> None:
    cfg = _recipe("llama3-8b")
    cfg = replace(cfg, grpo=replace(cfg.grpo, vllm_weight_sync="directory", vllm_weights_dir="/scratch/weights"))
    with pytest.raises(K8sError, match="grpo.vllm_weights_dir must be relative to SWERL_HOME"):
        render_training(cfg, ClusterLayout(nodes=2))


def test_an_api_server_that_never_answers_is_an_error_not_a_hang(tmp_path: Path, monkeypatch) -> None:
    from swerl_core.k8s import delete_objects

    monkeypatch.setattr("swerl_core.k8s.jobs._REQUEST_S", 1.0)  # 60 s in use
    silent = FakeKubernetes()  # listening, never served: connections are taken and never answered
    try:
        access = ClusterAccess(silent.kubeconfig(tmp_path))
        with pytest.raises(K8sError, match=r"is unreachable \(reading job swerl/r8b\)"):
            follow_job("r8b", "swerl", access, poll_s=0.1, timeout_s=30)
        config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "swerl"}}
        with pytest.raises(K8sError, match=r"is unreachable \(ConfigMap swerl/x\)"):
            delete_objects([config_map], access)
    finally:
        silent.server.server_close()
