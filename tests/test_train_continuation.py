"""Which run a training request continues (``TrainRequest.reuse``), decided from run folders alone: an unfinished run
of the same recipe resumes, a finished one is returned as it is and never trained further, a run of another recipe
(or another base model) is left alone for a new run with one line saying why. No training happens here; the flow
test (``test_flows.py``) and the local launcher's tests train for real. Also: one trainer per run, and the weights
versions a run killed outright left behind."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest

from swerl_core.config import Settings, load_settings
from swerl_core.train import TrainError, TrainRequest
from swerl_core.train.config import TrainConfig, train_config_from_dict
from swerl_core.train.continuation import (
    continued,
    hold_run,
    recipe_changes,
    recipe_record,
    remove_abandoned_weights,
    write_recipe_record,
    write_result_record,
)
from swerl_core.train.result import TrainResult

SNAPSHOT = "snap-1"


@pytest.fixture
def home_settings(tmp_path: Path) -> Settings:
    return load_settings(None, env={"SWERL_HOME": str(tmp_path / "home")})


def _recipe(**grpo: object) -> TrainConfig:
    return train_config_from_dict({"name": "r", "base_model": "models/tiny", "grpo": {"max_steps": 4, **grpo}})


def _run(settings: Settings, name: str, cfg: TrainConfig, steps: int, finished: bool = False) -> Path:
    """A run folder as a trainer leaves it: its recipe record, complete checkpoints, and ``final/`` when done."""
    run_dir = settings.checkpoints_dir / name
    write_recipe_record(run_dir, recipe_record(cfg, "grpo", SNAPSHOT, None, settings.home))
    for step in range(1, steps + 1):
        (run_dir / f"checkpoint-{step}").mkdir(parents=True)
        (run_dir / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if finished:
        (run_dir / "final").mkdir()
        (run_dir / "final" / "config.json").write_text("{}")
        result = TrainResult(name, "mlflow-1", "grpo", SNAPSHOT, "models/tiny", run_dir, run_dir / "final", steps, 4,
                             0, 1.0, resumed_from_steps=(2,))  # fmt: skip
        write_result_record(run_dir, result)
    return run_dir


def test_an_unfinished_run_of_the_same_recipe_is_resumed(home_settings: Settings) -> None:
    _run(home_settings, f"r-grpo-{SNAPSHOT}-20260101-000000", _recipe(), 1)
    _run(home_settings, f"r-grpo-{SNAPSHOT}-20260102-000000", _recipe(), 2)
    _run(home_settings, f"r-grpo-{SNAPSHOT}-20260103-000000", _recipe(), 0)  # died before its first checkpoint
    # Only where and how rollouts are served changed: the same run.
    cfg = _recipe(vllm_request_timeout_s=5)
    decided = continued(home_settings, TrainRequest(cfg, "grpo", SNAPSHOT, reuse=True))
    assert decided == TrainRequest(cfg, "grpo", SNAPSHOT, True, f"r-grpo-{SNAPSHOT}-20260102-000000", reuse=True)


def test_a_finished_run_is_returned_as_it_is_never_trained_further(home_settings: Settings) -> None:
    run_dir = _run(home_settings, f"r-grpo-{SNAPSHOT}-20260101-000000", _recipe(), 4, finished=True)
    decided = continued(home_settings, TrainRequest(_recipe(), "grpo", SNAPSHOT, reuse=True))
    assert isinstance(decided, TrainResult) and decided.reused
    assert (decided.run_name, decided.steps, decided.resumed_from_steps) == (run_dir.name, 4, (2,))
    assert decided.model_dir == run_dir / "final"
    assert (
        decided.summary()
        == f"{run_dir.name}: 4 steps, resumed from step 2 (finished before: reused, not trained again)"
    )


def test_a_run_of_another_recipe_is_left_for_a_new_run_saying_why(
    home_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    _run(home_settings, f"r-grpo-{SNAPSHOT}-20260101-000000", _recipe(), 4, finished=True)
    request = TrainRequest(_recipe(max_steps=6), "grpo", SNAPSHOT, reuse=True)  # more steps: another run
    with caplog.at_level(logging.WARNING, "swerl.train"):
        assert continued(home_settings, request) is request
    [line] = caplog.messages
    assert line == (
        f"run r-grpo-{SNAPSHOT}-20260101-000000 is not continued (its recipe differs: grpo.max_steps 4 → 6); "
        "starting a new run"
    )
    other_base = TrainRequest(_recipe(), "grpo", SNAPSHOT, base_model="checkpoints/sft/final", reuse=True)
    assert continued(home_settings, other_base) is other_base
    with pytest.raises(TrainError, match=r"^run r-grpo-snap-1-20260101-000000 is not continued: its recipe differs"):
        continued(home_settings, replace(request, run_name=f"r-grpo-{SNAPSHOT}-20260101-000000"))


def test_without_reuse_or_with_nothing_to_continue_a_request_is_unchanged(home_settings: Settings) -> None:
    request = TrainRequest(_recipe(), "grpo", SNAPSHOT, reuse=True)
    assert continued(home_settings, request) is request
    _run(home_settings, f"r-grpo-{SNAPSHOT}-20260101-000000", _recipe(), 2)
    assert continued(home_settings, replace(request, reuse=False)).run_name is None
    assert continued(home_settings, replace(request, stage="sft")).run_name is None  # another stage's runs


def test_the_other_stage_section_and_a_base_model_under_home_do_not_change_the_run(home_settings: Settings) -> None:
    cfg = _recipe()
    home = home_settings.home
    record = recipe_record(cfg, "grpo", SNAPSHOT, str(home / "checkpoints" / "sft" / "final"), home)
    run_dir = home_settings.checkpoints_dir / "x"
    write_recipe_record(run_dir, record)
    pod_view = recipe_record(
        replace(cfg, sft=replace(cfg.sft, learning_rate=1.0)), "grpo", SNAPSHOT, "checkpoints/sft/final", home
    )
    assert recipe_changes(run_dir, pod_view) == []
    assert recipe_changes(home_settings.checkpoints_dir / "none", record) is None


def test_a_run_is_trained_by_one_process_at_a_time(home_settings: Settings) -> None:
    run_dir = home_settings.checkpoints_dir / "r-grpo-x"
    held = hold_run(home_settings.home, run_dir)
    try:
        with pytest.raises(
            TrainError, match=rf"^run r-grpo-x is being trained by another process \(PID {os.getpid()}\)$"
        ):
            hold_run(home_settings.home, run_dir)
    finally:
        held.release()
    hold_run(home_settings.home, run_dir).release()


def test_weights_left_by_runs_killed_outright_are_removed_but_not_a_live_runs(home_settings: Settings) -> None:
    from swerl_core.weight_sync import write_weights

    checkpoints = home_settings.checkpoints_dir
    killed, live, other = checkpoints / "r-grpo-a", checkpoints / "r-grpo-b", checkpoints / "q-grpo-a"
    for run_dir in (killed, live, other):
        write_weights(run_dir / "rollout-weights", 3, [])
        (run_dir / "checkpoint-2").mkdir()  # what else a run folder holds stays
    held = hold_run(home_settings.home, live)
    try:
        cleaned = remove_abandoned_weights(home_settings.home, checkpoints, "r", lambda run: run / "rollout-weights")
    finally:
        held.release()
    assert cleaned == [killed / "rollout-weights"]
    assert not (killed / "rollout-weights").exists() and (killed / "checkpoint-2").is_dir()
    assert (live / "rollout-weights" / "v00000003").is_dir(), "a run still training lost its weights version"
    assert (other / "rollout-weights" / "v00000003").is_dir(), "another recipe's run was touched"


def test_a_run_a_clusters_pods_finished_is_found_under_the_world_size_they_ran(tmp_path: Path) -> None:
    """Pods run the recipe with ``world_size`` set to the cluster's nodes × GPUs and record it so: ``train.run``
    compares under that recipe, and returns the finished run without submitting anything."""
    from swerl_core.train import run
    from swerl_core.train.k8s.training import recipe_on_cluster

    settings = load_settings(None, env={"SWERL_HOME": str(tmp_path / "home"), "SWERL_TRAIN__LAUNCHER": "kubernetes"})
    cfg = _recipe(prompts_per_step=8, num_generations=4, per_device_batch_size=4)
    on_cluster = recipe_on_cluster(settings, cfg)
    assert (cfg.world_size, on_cluster.world_size) == (1, 8)
    run_dir = _run(settings, f"r-grpo-{SNAPSHOT}-20260101-000000", on_cluster, 4, finished=True)
    result = run(settings, TrainRequest(cfg, "grpo", SNAPSHOT, reuse=True))
    assert result.reused and result.run_name == run_dir.name
