"""GRPO with its rollouts from a rollout server (``grpo.vllm_mode: server``) started by swerl's own launcher,
``swerl-rollout``, on 127.0.0.1 — the command the rollout image and its Kubernetes Deployment run — with the
directory weight sync, through ``swerl train`` under DeepSpeed ZeRO-3 as a user runs it.

The run is stopped the hard way: the server's whole process group is killed after step 2's checkpoint. Training
must end with one line naming the server and the step, then ``--resume`` against a restarted server must finish
the same run with every step. Along the way the served weights must be the trainer's at every step (TRL scores
each sampled token with the trainer's own weights; vLLM returns its log-probability under the weights it serves),
and every completion token must come from the server (its own ``/metrics`` counter). Then two CPU ranks train as
one ZeRO-3 job through the same server, killed with every rank after a checkpoint and resumed on both, and the
evaluate stage's ``endpoint`` backend evaluates through it (one server start serves the module).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml
from mlflow_server import free_port, wait_until_healthy
from vllm_recipes import vllm_recipe

from swerl_core.train.tracking import EXPERIMENT

pytestmark = [pytest.mark.slow, pytest.mark.heavy(240)]

REPO = Path(__file__).resolve().parent.parent
STEPS = 4
PROMPTS_PER_STEP = 2
GENERATIONS = 4
SERVER_START_S = 400  # about 35 s on 2 idle cores; much longer beside the rest of the suite
RUN_S = 900


@dataclass
class RolloutServer:
    """One ``swerl-rollout`` process group on 127.0.0.1."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """Kill the server and its engine at once, as a node or pod dies."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=60)

    def counter(self, name: str) -> float:
        """The sum of a Prometheus counter over its labels, from the server's ``/metrics``."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as answer:
            page = answer.read().decode()
        values = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+]+)$", page, re.MULTILINE)
        assert values, f"{name} is not on the server's /metrics page"
        return sum(float(v) for v in values)

    def served_version(self) -> list[object]:
        """What each worker says it serves: the version and nonce of the last weights it loaded."""
        request = urllib.request.Request(
            f"{self.url}/collective_rpc",
            data=json.dumps({"method": "swerl_weights_version"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())["results"]


def _start_server(model: Path, weights_root: Path, log: Path) -> RolloutServer:
    port = free_port()
    command = [sys.executable, "-m", "swerl_core.rollout_server", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--weight-sync", "directory", "--weights-dir", str(weights_root),
               "--", "--seed", "0"]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    server = RolloutServer(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_until_healthy(server.url, process, SERVER_START_S, lambda: log.read_text()[-3000:])
    except BaseException:
        server.kill()
        raise
    return server


def _recipe(model: Path, url: str, weights_root: Path) -> dict:
    return vllm_recipe(
        "served", model, STEPS, PROMPTS_PER_STEP, GENERATIONS, vllm_mode="server", vllm_server_url=url,
        vllm_weight_sync="directory", vllm_weights_dir=str(weights_root), vllm_request_timeout_s=120,
    )  # fmt: skip


def _train_command(home: Path, recipe: dict, *args: str) -> tuple[list[str], dict[str, str]]:
    path = home / "served.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    command = [sys.executable, "-m", "swerl_core.cli", "train", "--recipe", str(path), "--run-name", "served"]
    command += ["--deepspeed", "infra/deepspeed/zero3.json", *args]
    return command, {**os.environ, "SWERL_HOME": str(home)}


@dataclass(frozen=True)
class KilledAndResumed:
    """A run whose server was killed after step 2, then resumed against a new server to the end."""

    home: Path
    run_dir: Path
    killed: subprocess.CompletedProcess[str]
    checkpoints_when_killed: list[int]  # the steps checkpointed when the killed run ended
    resumed: subprocess.CompletedProcess[str]
    server: RolloutServer  # the second server, still running
    weights_root: Path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init model of the learnable world's shape (head size 32, which vLLM's CPU kernels take)."""
    from swerl_core.demo.tiny_model import LEARNABLE_SPEC, init_tiny_model

    return init_tiny_model(tmp_path_factory.mktemp("models") / "learnable-shape", LEARNABLE_SPEC)


@pytest.fixture(scope="module")
def run(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KilledAndResumed]:
    from swerl_core.demo.sample_snapshot import write_sample_snapshot

    home = tmp_path_factory.mktemp("served-home")
    write_sample_snapshot(home)
    weights_root = tmp_path_factory.mktemp("served-weights")
    run_dir = home / "checkpoints" / "served"
    first = _start_server(model, weights_root, home / "server-1.log")
    try:
        command, env = _train_command(home, _recipe(model, first.url, weights_root))
        trainer = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + RUN_S
        while not (run_dir / "checkpoint-2" / "trainer_state.json").is_file() and trainer.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint-2 in time"
            time.sleep(0.2)
        first.kill()
        out, err = trainer.communicate(timeout=RUN_S)
        killed = subprocess.CompletedProcess(command, trainer.returncode, out, err)
        checkpoints = sorted(int(path.name.split("-")[1]) for path in run_dir.glob("checkpoint-*"))
    finally:
        first.kill()
    second = _start_server(model, weights_root, home / "server-2.log")
    try:
        command, env = _train_command(home, _recipe(model, second.url, weights_root), "--resume")
        resumed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_S)
        yield KilledAndResumed(home, run_dir, killed, checkpoints, resumed, second, weights_root)
    finally:
        second.kill()


def test_a_dead_server_stops_training_with_one_line_naming_it_and_the_step(run: KilledAndResumed) -> None:
    from mlflow import MlflowClient

    assert run.killed.returncode == 1, run.killed.stdout[-3000:] + run.killed.stderr[-3000:]
    last = run.killed.stderr.strip().splitlines()[-1]
    failure = re.fullmatch(r"swerl train: rollout server (\S+) cannot be reached for /\S+ \(.+\) at step (\d+)", last)
    assert failure, run.killed.stderr[-3000:]
    # The step named is the one the server's death stopped: every step before it finished and was checkpointed.
    step = int(failure.group(2))
    assert step >= 3 and run.checkpoints_when_killed == list(range(1, step)), (step, run.checkpoints_when_killed)
    # One MLflow run for both attempts: the killed one left it FAILED, the resumed one carried it on to FINISHED.
    client = MlflowClient(f"sqlite:///{run.home / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]


def test_the_resumed_run_finishes_every_step_of_the_same_run(run: KilledAndResumed) -> None:
    assert run.resumed.returncode == 0, run.resumed.stdout[-3000:] + run.resumed.stderr[-3000:]
    for step in range(1, STEPS + 1):
        state = json.loads((run.run_dir / f"checkpoint-{step}" / "trainer_state.json").read_text())
        assert state["global_step"] == step
    assert (run.run_dir / "final" / "model.safetensors").is_file()
    # The weights versions were the servers' copy of the policy: nothing of them is left once the run is done.
    assert list(run.weights_root.iterdir()) == []


def _history(run: KilledAndResumed, key: str) -> dict[int, float]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{run.home / 'mlflow.db'}")
    run_id = (run.run_dir / "mlflow_run_id").read_text().strip()
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def test_the_server_samples_from_the_trainers_weights_at_every_step(run: KilledAndResumed) -> None:
    assert run.resumed.returncode == 0, run.resumed.stderr[-3000:]
    gaps = _history(run, "sampling/sampling_logp_difference/max")
    assert sorted(gaps) == list(range(1, STEPS + 1)) and all(gap < 0.05 for gap in gaps.values()), gaps
    # The last sync carried the trainer's global step before the last step: the server confirms that version.
    assert [served["version"] for served in run.server.served_version()] == [STEPS - 1]


def test_every_completion_token_came_from_the_server(run: KilledAndResumed) -> None:
    assert run.resumed.returncode == 0, run.resumed.stderr[-3000:]
    tokens = _history(run, "vllm/generated_tokens")
    lengths = _history(run, "completions/mean_length")
    assert sorted(tokens) == list(range(1, STEPS + 1)), tokens
    for step, count in tokens.items():
        assert count == pytest.approx(lengths[step] * PROMPTS_PER_STEP * GENERATIONS, abs=0.5), (step, lengths)
    # The second server saw only the resumed steps; its own counter must account for every token they trained on.
    resumed_from = re.search(r"resuming from checkpoint-(\d+)", run.resumed.stdout + run.resumed.stderr)
    assert resumed_from, run.resumed.stdout[-2000:]
    resumed_steps = range(int(resumed_from.group(1)) + 1, STEPS + 1)
    assert run.server.counter("vllm:generation_tokens_total") == sum(tokens[s] for s in resumed_steps) > 0


@dataclass(frozen=True)
class TwoRanks:
    """A two-rank run on the same server: killed with all its ranks after a checkpoint, then resumed on both."""

    run_dir: Path
    resumed: subprocess.CompletedProcess[str]
    tracking_uri: str


@pytest.fixture(scope="module")
def two_ranks(run: KilledAndResumed) -> TwoRanks:
    recipe = _recipe(Path(_recipe_base_model(run)), run.server.url, run.weights_root)
    recipe["world_size"] = 2
    recipe["grpo"].update(per_device_batch_size=PROMPTS_PER_STEP * GENERATIONS // 2, max_steps=3)
    run_dir = run.home / "checkpoints" / "two-ranks"
    command, env = _train_command(run.home, recipe)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), *command[1:]]  # fmt: skip
    command[command.index("--run-name") + 1] = "two-ranks"
    launched = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + RUN_S
    while not (run_dir / "checkpoint-1" / "trainer_state.json").is_file() and launched.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint-1 in time"
        time.sleep(0.2)
    # Every rank at once, as when a node is lost (torchrun starts each rank in a process group of its own).
    for process in [*psutil.Process(launched.pid).children(recursive=True), psutil.Process(launched.pid)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    output = launched.communicate(timeout=60)[0]
    assert (run_dir / "checkpoint-1").is_dir(), output[-3000:]
    resumed = subprocess.run([*command, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_S)
    return TwoRanks(run_dir, resumed, f"sqlite:///{run.home / 'mlflow.db'}")


def _recipe_base_model(run: KilledAndResumed) -> str:
    return yaml.safe_load((run.home / "served.yaml").read_text())["base_model"]


def test_two_cpu_ranks_train_as_one_zero3_job_through_the_server_and_resume(two_ranks: TwoRanks) -> None:
    from mlflow import MlflowClient

    done = two_ranks.resumed
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming from checkpoint-" in done.stdout + done.stderr
    assert (done.stdout + done.stderr).count("mlflow run: ") == 1, "the result is the main rank's to report"
    for step in range(1, 4):
        checkpoint = two_ranks.run_dir / f"checkpoint-{step}"
        assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == step
        shards = sorted(p.name for p in (checkpoint / f"global_step{step}").glob("*_model_states.pt"))
        assert shards == [f"zero_pp_rank_{rank}_mp_rank_00_model_states.pt" for rank in (0, 1)], shards
    # Each rank trained on its own prompts at every step: one job, not two copies of it.
    orders = [two_ranks.run_dir / "data_order.jsonl", two_ranks.run_dir / "data_order.rank1.jsonl"]
    seen = [{row["step"]: set(row["instance_ids"]) for row in map(json.loads, path.read_text().splitlines())}
            for path in orders]  # fmt: skip
    assert set(seen[0]) == set(seen[1]) == {1, 2, 3}, seen
    assert all(seen[0][step].isdisjoint(seen[1][step]) for step in seen[0]), seen
    # Every sync gathered the full weights from both ranks' shards: the server samples from the trainer's weights.
    client = MlflowClient(two_ranks.tracking_uri)
    run_id = (two_ranks.run_dir / "mlflow_run_id").read_text().strip()
    gaps = {m.step: m.value for m in client.get_metric_history(run_id, "sampling/sampling_logp_difference/max")}
    assert sorted(gaps) == [1, 2, 3] and all(gap < 0.05 for gap in gaps.values()), gaps


def test_a_synced_version_is_what_the_server_serves(run: KilledAndResumed, model: Path, tmp_path: Path) -> None:
    """The sync on its own, on the run's server once the run is done: weights written as a version and loaded by
    the server answer exactly as the same weights do in transformers; a version outside the server's directory is
    refused and changes nothing."""
    import torch
    from transformers import AutoModelForCausalLM

    from swerl_core.train.rollout_client import RolloutServerError, connect
    from swerl_core.weight_sync import write_weights

    server, weights_root = run.server, run.weights_root
    client = connect(server.url, 60, 120)
    policy = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)) * 0.5)
    written = write_weights(weights_root, 9, policy.named_parameters())
    client.load_weights(written)
    assert server.served_version() == [{"version": 9, "nonce": written.nonce}]

    prompt = [1, 6, 9, 12, 40, 41, 77]
    served = client.generate([prompt], n=1, max_tokens=12, temperature=0.0, logprobs=0)
    with torch.no_grad():
        greedy = policy.generate(
            torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=12, do_sample=False, eos_token_id=None,
        )[0, len(prompt):].tolist()  # fmt: skip
    assert served["completion_ids"][0] == greedy

    elsewhere = write_weights(tmp_path / "elsewhere", 10, policy.named_parameters())
    with pytest.raises(RolloutServerError, match="HTTP 500"):
        client.load_weights(elsewhere)
    assert server.served_version() == [{"version": 9, "nonce": written.nonce}]


def test_the_endpoint_backend_evaluates_through_the_rollout_server(run: KilledAndResumed, tmp_path: Path) -> None:
    """``evaluate.backend: endpoint`` against the same server, which counts every request and completion token the
    evaluation recorded (K = 2 answers an instance, asked for as one request with ``n = 2``)."""
    from swerl_core import evaluate
    from swerl_core.config import load_settings
    from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID, write_sample_snapshot

    home = tmp_path / "home"
    write_sample_snapshot(home)
    served_name = _recipe_base_model(run)  # vLLM serves a model under the path it was started with
    overrides: dict[str, object] = {
        "evaluate.limit": 4,
        "evaluate.max_new_tokens": 24,
        "evaluate.lineage": False,
        "evaluate.samples": 2,
    }
    overrides |= {"evaluate.backend": "endpoint", "evaluate.endpoint_url": f"{run.server.url}/v1"}
    overrides |= {"evaluate.endpoint_model": served_name}
    settings = load_settings(env={"SWERL_HOME": str(home), "SWERL_REWARD__WORKERS": "1"}, overrides=overrides)
    requests_before = run.server.counter("vllm:request_success_total")
    tokens_before = run.server.counter("vllm:generation_tokens_total")
    report = evaluate.run(settings, evaluate.EvaluateRequest(served_name, SAMPLE_SNAPSHOT_ID))
    assert (report.backend, report.metrics.n_instances) == ("endpoint", 4)
    predictions = report.predictions_path.read_text(encoding="utf-8").splitlines()
    assert len(predictions) == 2 * 4
    # One request per instance asking for n = 2 answers; the server counts each answer as a finished request.
    assert run.server.counter("vllm:request_success_total") - requests_before == 2 * 4
    assert run.server.counter("vllm:generation_tokens_total") - tokens_before == report.metrics.tokens_generated > 0
