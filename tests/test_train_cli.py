"""``swerl train`` / ``swerl init-model``: one-line errors with non-zero exits, and the tiny model verb."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from swerl_core.cli import main
from swerl_core.demo.sample_snapshot import write_sample_snapshot

REPO = Path(__file__).resolve().parent.parent
DEMO = str(REPO / "deployments" / "configs" / "demo-cpu.yaml")


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, f"expected one line, got:\n{err}"
    return err


def test_missing_recipe_exits_2_with_one_line(swerl_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--recipe", str(swerl_home / "nope.yaml")]) == 2
    assert "cannot read recipe" in _one_line_error(capsys)


def test_bad_recipe_key_exits_2_naming_it(swerl_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = swerl_home / "bad.yaml"
    recipe.write_text("name: x\nbase_model: m\ngrpo:\n  num_generations: 3\n  prompts_per_step: 1\n", encoding="utf-8")
    assert main(["train", "--recipe", str(recipe)]) == 2
    assert "grpo.per_device_batch_size" in _one_line_error(capsys)


def test_unknown_snapshot_exits_1(swerl_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sample_snapshot(swerl_home)
    assert main(["train", "--recipe", DEMO, "--snapshot", "missing"]) == 1
    assert "snapshot 'missing' not found" in _one_line_error(capsys)


def test_resume_without_a_run_exits_1(swerl_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sample_snapshot(swerl_home)
    (swerl_home / "models" / "tiny").mkdir(parents=True)
    (swerl_home / "models" / "tiny" / "config.json").write_text("{}", encoding="utf-8")  # found; never loaded
    assert main(["train", "--recipe", DEMO, "--resume"]) == 1
    assert "nothing to resume" in _one_line_error(capsys)


def test_base_model_folder_not_built_yet_fails_at_once_naming_init_model(
    swerl_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sample_snapshot(swerl_home)
    started = time.monotonic()
    assert main(["train", "--recipe", "demo-cpu", "--stage", "sft"]) == 1
    error = _one_line_error(capsys)
    assert "'models/tiny' not found" in error and "`swerl init-model`" in error, error
    assert time.monotonic() - started < 10, "a folder name must never wait for Hugging Face hub retries"


def test_missing_base_model_exits_1(swerl_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_sample_snapshot(swerl_home)
    assert main(["train", "--recipe", DEMO, "--model", str(swerl_home / "no-model")]) == 1
    assert "no model directory" in _one_line_error(capsys)


def test_init_model_writes_the_recipes_base_model_under_home_and_never_overwrites_silently(
    swerl_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM

    from swerl_core.train.config import load_train_config

    monkeypatch.chdir(tmp_path)
    assert main(["init-model"]) == 0
    assert "M parameters) written to" in capsys.readouterr().out
    model = swerl_home / load_train_config(Path(DEMO)).base_model
    assert AutoModelForCausalLM.from_pretrained(model).num_parameters() > 1_000_000
    assert not (tmp_path / "models").exists()
    before = (model / "config.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["init-model"]) == 1
    assert "already holds files" in _one_line_error(capsys)
    assert (model / "config.json").stat().st_mtime_ns == before
    assert main(["init-model", "--force"]) == 0


def test_colocated_engines_in_several_cpu_ranks_are_refused(
    swerl_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several CPU ranks train as one job (tests/test_vllm_server.py), but an engine in every rank is not supported.
    write_sample_snapshot(swerl_home)
    recipe = swerl_home / "two.yaml"
    recipe.write_text(
        Path(DEMO)
        .read_text(encoding="utf-8")
        .replace("world_size: 1", "world_size: 2")
        .replace("per_device_batch_size: 8 ", "per_device_batch_size: 4 ")
        .replace("grpo:\n", "grpo:\n  use_vllm: true\n  vllm_mode: colocate\n"),
        encoding="utf-8",
    )
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--recipe", str(recipe)]) == 1
    assert "grpo.vllm_mode: colocate (an engine in every rank) is not supported" in _one_line_error(capsys)


def test_the_default_snapshot_is_the_recipes_when_it_exists_else_the_newest_curated(swerl_home: Path) -> None:
    import json

    from swerl_core.config import load_settings
    from swerl_core.snapshots import default_snapshot

    settings = load_settings(overrides={"home": swerl_home})
    assert default_snapshot(settings, "sample-toolkit-v1") == "sample-toolkit-v1"  # nothing curated: as written
    for name, created in (("older", "2026-01-01T00:00:00+00:00"), ("newer", "2026-02-01T00:00:00+00:00")):
        manifest = write_sample_snapshot(swerl_home, name) / "manifest.json"
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "created_at": created}))
    assert default_snapshot(settings, "sample-toolkit-v1") == "newer"
    write_sample_snapshot(swerl_home)
    assert default_snapshot(settings, "sample-toolkit-v1") == "sample-toolkit-v1"


def test_latest_names_the_final_checkpoint_of_the_newest_finished_run(
    swerl_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from swerl_core.cli.arguments import model_argument
    from swerl_core.config import load_settings

    runs = swerl_home / "checkpoints"
    for name, finished in [
        ("demo-cpu-sft-s1-20260101-000000", True),
        ("demo-cpu-grpo-s1-20260101-000500", True),
        ("demo-cpu-grpo-s1-20260101-001000", False),  # started last, but still running (no final/)
    ]:
        folder = runs / name / ("final" if finished else "checkpoint-1")
        folder.mkdir(parents=True)
        if finished:
            (folder / "config.json").write_text("{}", encoding="utf-8")
    settings = load_settings()
    assert model_argument("latest", settings) == str(runs / "demo-cpu-grpo-s1-20260101-000500" / "final")
    assert "(the newest finished training run)" in capsys.readouterr().err
    assert model_argument("checkpoints/x/final", settings) == "checkpoints/x/final"


def test_max_steps_cuts_the_stage_short_and_must_be_positive(
    swerl_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sample_snapshot(swerl_home)
    assert main(["train", "--recipe", "demo-cpu", "--max-steps", "0"]) == 1
    assert "--max-steps must be a positive number of steps" in _one_line_error(capsys)


# What rank 1 of `torchrun --nproc_per_node 2 -m swerl_core.cli train` raised when rank 0 gave up on a rollout server
# that never came up (torch 2.13, gloo; measured 2026-12-07): rank 1 was waiting for rank 0 in a collective.
GLOO_PEER_GONE = (
    "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
    "[127.0.0.1]:11911. This is typically caused by a remote worker crashing. Check the logs of the remote worker "
    "before reporting an error. GLHF! 🏖️"
)


@pytest.mark.parametrize(("rank", "said"), [("1", ""), ("0", "swerl train: unexpected error: RuntimeError: [")])
def test_a_rank_whose_collective_broke_because_the_main_rank_ended_says_nothing(
    swerl_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rank: str, said: str
) -> None:
    """Two CPU ranks without their rollout server: rank 0 says so in one line and exits; rank 1's collective then
    breaks. Rank 1 exits 1 without a line of its own (a crash line about a closed connection would bury rank 0's
    reason); the main rank reports such an error itself (there it is the news)."""
    import swerl_core.train

    def peer_gone(*args: object, **kwargs: object) -> None:
        raise RuntimeError(GLOO_PEER_GONE)

    write_sample_snapshot(swerl_home)
    for key, value in {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(swerl_core.train, "run", peer_gone)
    monkeypatch.setattr(swerl_core.train, "checked_plan", lambda *args: None)
    assert main(["train", "--recipe", DEMO, "--snapshot", "sample-toolkit-v1", "--run-name", "two"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(said) if said else err == "", err


def test_resume_with_another_recipe_is_refused_naming_what_differs(
    swerl_home: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import yaml

    from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID
    from swerl_core.train.config import train_config_from_dict
    from swerl_core.train.continuation import recipe_record, write_recipe_record

    write_sample_snapshot(swerl_home)
    grpo = {"prompts_per_step": 2, "num_generations": 2, "per_device_batch_size": 4, "max_steps": 2}
    values = {"name": "r", "base_model": str(model_dir), "max_prompt_length": 1024, "max_completion_length": 48,
              "grpo": grpo}  # fmt: skip
    run_dir = swerl_home / "checkpoints" / "run"
    write_recipe_record(
        run_dir, recipe_record(train_config_from_dict(values), "grpo", SAMPLE_SNAPSHOT_ID, None, swerl_home)
    )
    (run_dir / "checkpoint-1").mkdir()
    (run_dir / "checkpoint-1" / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    recipe = swerl_home / "r.yaml"
    recipe.write_text(yaml.safe_dump(values))
    command = ["train", "--recipe", str(recipe), "--snapshot", SAMPLE_SNAPSHOT_ID, "--run-name", "run", "--resume"]
    assert main([*command, "--max-steps", "3"]) == 1
    assert _one_line_error(capsys) == (
        "swerl train: run run was trained with another recipe (grpo.max_steps 2 → 3): resume it with its own recipe, "
        "or start a new run"
    )
