"""End to end on the tiny model: `swerl evaluate` on a held-out snapshot, `swerl register --policy auto` judged by a
gate the random model cannot pass, `swerl promote` refused without --force, and ``models:/NAME@champion`` loading
with transformers — CPU only, nothing downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from eval_world import SNAPSHOT, tiny_model_dir, write_snapshot

from swerl_core.cli import main
from swerl_core.config import load_settings
from swerl_core.registry.aliases import CHAMPION, alias_version
from swerl_core.registry.versions import mlflow_client, resolve_model
from swerl_core.store import Store


@pytest.mark.slow
def test_tiny_model_is_evaluated_fails_the_gate_and_is_served_back_only_after_a_forced_promote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    write_snapshot(home, n_heldout=3)
    ckpt = home / "checkpoints" / "sft-run" / "final"
    shutil.copytree(tiny_model_dir(), ckpt)
    for key, value in {
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "SWERL_EVALUATE__MAX_NEW_TOKENS": "8",
        "SWERL_REWARD__WORKERS": "1",
        "SWERL_REGISTRY__MODEL_NAME": "tiny",
        "SWERL_REGISTRY__REWARD_FLOOR": "0.5",  # 8 random tokens are never a well-formed answer
    }.items():
        monkeypatch.setenv(key, value)
    cli = ["--home", str(home)]
    assert main([*cli, "evaluate", "--model", str(ckpt), "--snapshot", SNAPSHOT, "--batch-size", "2"]) == 0
    assert "3 instances x K=1" in capsys.readouterr().out
    with Store.open(home / "swerl.duckdb", read_only=True) as store:
        rows = store.connection.execute(
            "SELECT n_instances, n_samples, tokens_generated, mlflow_run_id, mean_reward FROM evaluations"
        ).fetchall()
    [(n_instances, n_samples, tokens, run_id, mean_reward)] = rows
    assert (n_instances, n_samples) == (3, 3) and 0 < tokens <= 3 * 8 and -1.0 <= mean_reward <= 1.0
    settings = load_settings(overrides={"home": home})
    client = mlflow_client(settings.tracking_uri)
    [folder] = client.list_artifacts(run_id, "evaluations")
    files = {artifact.path for artifact in client.list_artifacts(run_id, folder.path)}
    assert any(f.endswith("predictions.jsonl") for f in files) and any(f.endswith("comparison.png") for f in files)

    # A newer --limit 1 evaluation must not stand in for the full protocol at the gate.
    assert main([*cli, "evaluate", "--model", str(ckpt), "--snapshot", SNAPSHOT, "--limit", "1"]) == 0
    assert "1 instances x K=1" in capsys.readouterr().out

    # The registration reuses the full evaluation (no third rollout); the gate fails on its real numbers and
    # policy auto therefore crowns nobody.
    assert main([*cli, "register", "--model", str(ckpt), "--snapshot", SNAPSHOT, "--policy", "auto"]) == 0
    out = capsys.readouterr().out
    assert f"tiny v1: gate fail — mean reward {mean_reward:.4f} < 0.5000 (the floor)" in out, out
    tags = client.get_model_version("tiny", "1").tags
    assert tags["eval.n_instances"] == "3.0" and float(tags["eval.mean_reward"]) == mean_reward
    assert tags["gate.verdict"] == "fail" and alias_version(client, "tiny", CHAMPION) is None
    with Store.open(home / "swerl.duckdb", read_only=True) as store:
        assert store.connection.execute("SELECT count(*) FROM evaluations").fetchone() == (2,), "evaluated again"
    assert main([*cli, "promote", "1"]) == 1
    assert "did not pass the gate" in capsys.readouterr().err
    assert alias_version(client, "tiny", CHAMPION) is None
    assert main([*cli, "promote", "1", "--force", "--reason", "serve the tiny model for the test"]) == 0
    assert alias_version(client, "tiny", CHAMPION) == "1"

    from transformers import AutoModelForCausalLM, AutoTokenizer

    served = resolve_model(client, "models:/tiny@champion", tmp_path / "serve")
    model = AutoModelForCausalLM.from_pretrained(served.local_dir)
    AutoTokenizer.from_pretrained(served.local_dir)
    assert served.version == "1" and model.config.hidden_size == 32
    assert main([*cli, "evaluate", "--model", "models:/tiny@champion", "--snapshot", SNAPSHOT, "--limit", "1"]) == 0
    assert "models:/tiny/1 on heldout" in capsys.readouterr().out
