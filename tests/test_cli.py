"""The ``swerl`` command line: help, the demo, and one-line errors."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from swerl_core.cli import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swerl_core.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_help_lists_the_verbs() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout


TEST_RECIPE = Path(__file__).resolve().parent / "data" / "demo-test.yaml"


@pytest.mark.slow
def test_demo_runs_every_stage_on_the_sample_world(
    capsys: pytest.CaptureFixture[str], swerl_home: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path
) -> None:
    from swerl_core.demo.tiny_model import parameter_count

    # A test-sized recipe, answer budget and base model: the same stages as `make demo`, a fraction of the work.
    # The recipe's base model is already there (the smallest tiny Llama), so the demo trains it instead of
    # building its 3 M-parameter default; `swerl init-model` builds that one in the README walk.
    shutil.copytree(model_dir, swerl_home / "models" / "tiny")
    monkeypatch.setenv("SWERL_EVALUATE__MAX_NEW_TOKENS", "48")
    monkeypatch.setenv("SWERL_EVALUATE__LIMIT", "2")
    assert main(["demo", "--recipe", str(TEST_RECIPE)]) == 0
    out = capsys.readouterr().out
    assert f"Train a tiny Llama ({parameter_count(model_dir) / 1e6:.1f} M parameters)" in out, "base model not reused"
    assert "+1.0000  the developer's fix" in out
    assert "-1.0000  no <think> tag  (<think> appears 0 times, expected once)" in out
    assert "acme/textkit: 30 new, 0 updated, 2 skipped" in out
    assert re.search(r"snapshot [0-9a-f]{16} \(new\): 17 train, 5 held-out", out), out
    assert f"DuckDB: {swerl_home / 'swerl.duckdb'}" in out and f"snapshot files: {swerl_home / 'snapshots'}" in out
    assert re.search(r"GRPO: 1 steps in \d+ s", out), out
    sft_dir = next((swerl_home / "checkpoints").glob("demo-test-sft-*/final")).resolve()
    assert re.search(rf"{re.escape(str(sft_dir))}: held-out mean reward [+-]\d\.\d{{3}}, apply rate", out), out
    assert out.count(": held-out mean reward") == 2, "the tiny base model, then the SFT checkpoint"
    verdict = re.search(r"swerl-policy v1: gate (pass|fail|inconclusive)", out)
    assert verdict, out
    assert (verdict.group(1) != "pass") == ("A failed gate is the expected end of the demo" in out)
    assert re.search(rf"predictions: {re.escape(str(swerl_home / 'evaluations'))}/\S+/predictions.jsonl", out), out
    assert (swerl_home / "swerl.duckdb").is_file() and (swerl_home / "mlflow.db").is_file()
    assert len(list((swerl_home / "checkpoints").glob("demo-test-grpo-*/final/model.safetensors"))) == 1


def test_bad_config_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("github:\n  per_page: 1000\n")
    result = run_cli("--config", str(config), "demo")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "swerl demo: invalid setting github.per_page (SWERL_GITHUB__PER_PAGE): expected an integer in 1..100, got 1000"
    )


def test_help_lists_the_verbs_in_pipeline_order() -> None:
    out = run_cli("--help").stdout
    order = ["ingest", "status", "curate", "init-model", "train", "evaluate", "register", "promote", "models", "demo"]
    positions = [re.search(rf"^\s+{verb}\s", out, re.MULTILINE) for verb in order]
    assert all(positions), out
    starts = [m.start() for m in positions if m]
    assert starts == sorted(starts), out


def test_verb_help_shows_the_setting_each_flag_overrides_and_its_default() -> None:
    out = " ".join(run_cli("evaluate", "--help").stdout.split())
    assert "(default: setting evaluate.samples = 1)" in out
    assert "(default: setting evaluate.max_new_tokens = 1024)" in out


def _verb_parsers() -> dict[str, argparse.ArgumentParser]:
    from swerl_core.cli import build_parser

    (verbs,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    found = dict(verbs.choices)
    for name, parser in list(found.items()):  # `demo serve`
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                found.update({f"{name} {sub}": p for sub, p in action.choices.items()})
    return found


@pytest.mark.parametrize("verb", sorted(_verb_parsers()))
def test_every_flag_of_every_verb_has_help_and_shows_its_default_once(verb: str) -> None:
    parser = _verb_parsers()[verb]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        text = formatter._expand_help(action)
        assert text.strip(), f"swerl {verb} {action.option_strings[0]} has no description"
        assert text.count("default") <= 1 and "(default: )" not in text, f"{verb} {action.option_strings}: {text}"
    parser.format_help()  # renders without error


def test_a_flag_override_is_validated_by_the_settings_loader(swerl_home: Path) -> None:
    result = run_cli("evaluate", "--model", "m", "--snapshot", "s", "--samples", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "swerl evaluate: invalid setting evaluate.samples (SWERL_EVALUATE__SAMPLES): "
        "expected an integer in 1..1000, got 0"
    )


def test_config_after_the_verb_is_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("github:\n  per_page: 1000\n")
    result = run_cli("status", "--config", str(config))
    assert result.returncode == 2
    assert "invalid setting github.per_page" in result.stderr


def test_an_unexpected_error_is_one_line_pointing_at_its_traceback_log(tmp_path: Path, swerl_home: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("init-model", "--tiny", str(blocker / "tiny"))
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("swerl init-model: unexpected error: "), result.stderr
    log = Path(re.search(r"traceback in (\S+);", line).group(1))  # type: ignore[union-attr]
    assert log.parent == swerl_home / "logs" and "Traceback (most recent call last)" in log.read_text()


def test_debug_prints_the_traceback(tmp_path: Path, swerl_home: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("--debug", "init-model", "--tiny", str(blocker / "tiny"))
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert not (swerl_home / "logs").exists()


def test_read_only_verbs_on_a_missing_home_create_nothing(tmp_path: Path) -> None:
    home = tmp_path / "nowhere"
    for verb in ("models", "status", "curate"):
        result = run_cli("--home", str(home), verb)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, (verb, result.stderr)
    assert not home.exists()


def test_demo_serve_serves_the_sample_world_until_stopped(swerl_home: Path) -> None:
    import json
    import signal
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "swerl_core.cli", "demo", "serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = re.search(r"at (http://127\.0\.0\.1:\d+);", first)
        assert url and "acme/textkit" in first, first
        rest = [proc.stdout.readline() for _ in range(3)]
        assert f"SWERL_GITHUB_API_URL={url.group(1)}" in rest[1] and "--repo acme/textkit" in rest[2], rest
        request = urllib.request.Request(
            f"{url.group(1)}/repos/acme/textkit", headers={"Authorization": "token demo-token"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["full_name"] == "acme/textkit"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_library_chatter_stays_off_the_terminal(tmp_path: Path) -> None:
    probe = (
        "from swerl_core.quiet import quiet_libraries\n"
        "quiet_libraries()\n"
        "from deepspeed.accelerator import get_accelerator\n"
        "get_accelerator()\n"
        "from mlflow import MlflowClient\n"
        f"MlflowClient(tracking_uri='sqlite:///{tmp_path / 'mlflow.db'}').search_experiments()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DS_ACCELERATOR", "MLFLOW_LOGGING_LEVEL")}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mlflow.db").is_file()
    for chatter in ("Setting accelerator to", "Creating initial MLflow database tables", "alembic"):
        assert chatter not in result.stderr, result.stderr
