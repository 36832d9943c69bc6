"""Registry on a sqlite-backed MLflow: versions with provenance, the gate verdict, challenger/champion, promote,
rollback and --force, every alias move logged with who/why/when, and the download cache of versions."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from eval_world import make_settings
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

from swerl_core.cli import main
from swerl_core.registry import RegistryError
from swerl_core.registry.aliases import CHALLENGER, CHAMPION, alias_moves, alias_version, champion_lineage
from swerl_core.registry.gate import GateMetrics
from swerl_core.registry.gate_report import gate_markdown
from swerl_core.registry.register import (
    list_versions,
    promote_version,
    register,
    registered_version,
    rollback_champion,
)
from swerl_core.registry.versions import COMPLETE_MARKER, mlflow_client, resolve_model
from swerl_core.runs import write_run_id

_RUNS = itertools.count()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One MLflow database for the module (creating one takes seconds); each test uses its own model name.
    return tmp_path_factory.mktemp("registry-home")


def _checkpoint(root: Path, name: str) -> Path:
    path = root / "checkpoints" / name / "final"
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"_name_or_path": "base/tiny-llama", "model_type": "llama"}))
    (path / "model.safetensors").write_bytes(b"\0" * 64)
    return path


def _metrics(snapshot: str, reward: float, fmt: float = 0.0, protocol: str = "p1") -> GateMetrics:
    """An evaluation on 10 held-out instances that each scored ``reward``."""
    return GateMetrics(snapshot, 1, reward, fmt, protocol, {f"inst-{j}": (reward,) for j in range(10)})


def _register(
    settings: Any, name: str, reward: float, fmt: float = 0.0, snapshot: str = "s1", protocol: str = "p1", **kw: Any
) -> Any:
    metrics = {"mean_reward": reward, "format_error_rate": fmt, "exact_match_rate": 0.1}
    ckpt = _checkpoint(settings.home / name, f"run-{next(_RUNS)}")
    candidate = _metrics(snapshot, reward, fmt, protocol)
    return register(settings, ckpt, candidate, metrics, who="alice", git_sha="abc123", **kw)


def test_first_version_passes_the_floor_gets_challenger_and_provenance_tags(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-first", "registry.reward_floor": 0.2})
    client = mlflow_client(settings.tracking_uri)
    experiment = client.create_experiment("swerl-train-test", artifact_location=(home / "art").as_uri())
    train_run = client.create_run(experiment).info.run_id
    client.log_param(train_run, "base_model", "acme/base-7b")
    client.log_param(train_run, "git_sha", "feedface")
    ckpt = _checkpoint(home / "m-first", "grpo-run")
    write_run_id(ckpt.parent, train_run)
    result = register(settings, ckpt, GateMetrics("s1", 1, 0.3, 0.1, "p1"), {"mean_reward": 0.3}, who="alice")
    assert result.verdict.passed and result.run_id == train_run
    assert [m.alias for m in result.moves] == [CHALLENGER]
    assert alias_version(client, "m-first", CHALLENGER) == result.version
    assert alias_version(client, "m-first", CHAMPION) is None, "policy manual must not crown anyone"
    tags = client.get_model_version("m-first", result.version).tags
    assert tags["snapshot_id"] == "s1" and tags["base_model"] == "acme/base-7b" and tags["git_sha"] == "feedface"
    assert tags["training_run_id"] == train_run and len(tags["config_hash"]) == 16
    assert tags["eval.mean_reward"] == "0.3" and tags["gate.verdict"] == "pass" and tags["eval.protocol"] == "p1"
    assert client.get_model_version("m-first", result.version).source.endswith("/model")


def test_below_the_floor_fails_and_gets_no_alias(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-floor", "registry.reward_floor": 0.2})
    result = _register(settings, "m-floor", 0.1)
    assert not result.verdict.passed and result.moves == ()
    client = mlflow_client(settings.tracking_uri)
    assert client.get_model_version("m-floor", result.version).tags["gate.verdict"] == "fail"
    assert alias_version(client, "m-floor", CHALLENGER) is None


def test_auto_policy_promotes_then_rollback_walks_back_through_holders(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-chain", "registry.policy": "auto"})
    client = mlflow_client(settings.tracking_uri)
    v1 = _register(settings, "m-chain", 0.2).version
    second = _register(settings, "m-chain", 0.4)
    assert second.verdict.passed and second.verdict.champion_version == v1
    assert alias_version(client, "m-chain", CHAMPION) == second.version
    assert alias_version(client, "m-chain", CHALLENGER) is None, "a crowned challenger loses the challenger alias"
    manual = make_settings(home, **{"registry.model_name": "m-chain"})
    third = _register(manual, "m-chain", 0.5).version
    promote_version(manual, third, "bob", "weekly release")
    assert champion_lineage(alias_moves(client, "m-chain")) == [v1, second.version, third]
    assert rollback_champion(manual, "carol", "regression in prod").version == second.version
    assert rollback_champion(manual, "carol", "still bad").version == v1
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback_champion(manual, "carol", "again")
    last = alias_moves(client, "m-chain")[-1]
    assert (last.alias, last.version, last.previous, last.kind) == (CHAMPION, v1, second.version, "rollback")
    assert (last.who, last.why) == ("carol", "still bad") and last.when.startswith("20")


def test_the_champions_stored_rewards_are_paired_and_the_evidence_lands_in_mlflow(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-paired", "registry.policy": "auto"})
    client = mlflow_client(settings.tracking_uri)
    v1 = _register(settings, "m-paired", 0.2).version
    noisy = {f"inst-{j}": (0.25 + (0.6 if j % 2 else -0.6),) for j in range(10)}
    unsure = register(
        settings,
        _checkpoint(settings.home / "m-paired", "noisy"),
        GateMetrics("s1", 1, 0.25, 0.0, "p1", noisy),
        {"mean_reward": 0.25},
        who="alice",
    )
    assert unsure.verdict.decision == "inconclusive" and unsure.moves == ()
    assert alias_version(client, "m-paired", CHAMPION) == v1, "an inconclusive gate must never promote"
    assert unsure.verdict.champion.rewards == {f"inst-{j}": (0.2,) for j in range(10)}, "champion rewards not paired"
    tags = client.get_model_version("m-paired", unsure.version).tags
    assert tags["gate.verdict"] == "inconclusive" and tags["gate.n_instances"] == "10"
    assert float(tags["gate.ci_lower"]) < 0 < float(tags["gate.ci_upper"]) and int(tags["gate.instances_needed"]) > 10
    with pytest.raises(RegistryError, match="verdict inconclusive"):
        promote_version(settings, unsure.version, "bob", "looks fine")
    assert [a.rsplit("/", 1)[-1] for a in unsure.gate_artifacts] == ["gate.json", "paired_differences.png"]
    report = client.download_artifacts(unsure.run_id, f"registry/v{unsure.version}/gate.json", str(home / "dl"))
    document = json.loads(Path(report).read_text())
    assert document["decision"] == "inconclusive" and len(document["comparison"]["per_instance"]) == 10
    assert document["comparison"]["per_instance"][0]["champion"] == 0.2
    markdown = gate_markdown(unsure.verdict)
    assert "## Gate: **inconclusive**" in markdown and "| inst-1 | +0.850 | +0.200 | +0.650 |" in markdown
    assert "more held-out instances" in markdown


def test_failed_version_needs_force_and_a_reason_to_become_champion(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-force", "registry.margin": 0.05})
    client = mlflow_client(settings.tracking_uri)
    v1 = _register(settings, "m-force", 0.5).version
    promote_version(settings, v1, "alice", "first")
    worse = _register(settings, "m-force", 0.52)
    assert worse.verdict.decision == "fail" and "vs margin 0.05" in worse.verdict.reason
    with pytest.raises(RegistryError, match="did not pass the gate"):
        promote_version(settings, worse.version, "bob", "looks fine")
    with pytest.raises(RegistryError, match="forced promotion needs a reason"):
        promote_version(settings, worse.version, "bob", " ", force=True)
    assert alias_version(client, "m-force", CHAMPION) == v1
    move = promote_version(settings, worse.version, "bob", "hotfix for tokenizer bug", force=True)
    assert move.forced and alias_version(client, "m-force", CHAMPION) == worse.version
    logged = json.loads(client.get_model_version("m-force", worse.version).tags["last_alias_move"])
    assert logged["forced"] and logged["who"] == "bob" and logged["why"] == "hotfix for tokenizer bug"


def test_champion_evaluated_elsewhere_is_evaluated_again_on_the_candidates_snapshot(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-snap", "registry.policy": "auto"})
    v1 = _register(settings, "m-snap", 0.5, snapshot="s1").version
    with pytest.raises(RegistryError, match="has no evaluation on s2"):
        _register(settings, "m-snap", 0.6, snapshot="s2")
    client = mlflow_client(settings.tracking_uri)
    unjudged = client.get_model_version("m-snap", str(int(v1) + 1)).tags
    assert unjudged["gate.verdict"] == "fail" and "no evaluation" in unjudged["gate.reason"]
    asked: list[str] = []

    def evaluate_champion(version: str) -> GateMetrics:
        asked.append(version)
        return _metrics("s2", 0.7)

    result = _register(settings, "m-snap", 0.6, snapshot="s2", evaluate_champion=evaluate_champion)
    assert asked == [v1] and not result.verdict.passed and result.verdict.champion.mean_reward == 0.7


def test_cli_promote_refuses_a_failed_version_in_one_line_and_lists_models(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-cli", "registry.reward_floor": 0.9})
    failed = _register(settings, "m-cli", 0.1).version
    monkeypatch.setenv("SWERL_REGISTRY__MODEL_NAME", "m-cli")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    assert main(["--home", str(home), "promote", failed]) == 1
    assert "did not pass the gate" in capsys.readouterr().err
    assert main(["--home", str(home), "promote", failed, "--force", "--reason", "manual override"]) == 0
    assert main(["--home", str(home), "models"]) == 0
    out = capsys.readouterr().out
    assert f"{failed:>7}  champion" in out and "fail" in out
    assert "judged against" in out and out.rstrip().endswith("the floor 0.9"), out
    assert main(["--home", str(home), "rollback"]) == 1
    assert "no previous champion" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["acme's policy", 'the "best" policy'])
def test_a_model_name_with_a_quote_is_listed_and_its_versions_found(
    home: Path, name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(home, **{"registry.model_name": name})
    registered = _register(settings, name, 0.3)
    client = mlflow_client(settings.tracking_uri)
    assert registered_version(client, name, registered.run_id) == registered.version
    assert [row.version for row in list_versions(settings)] == [registered.version]
    monkeypatch.setenv("SWERL_REGISTRY__MODEL_NAME", name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    assert main(["--home", str(home), "models"]) == 0
    assert f"{registered.version:>7}" in capsys.readouterr().out


def test_champion_evaluated_under_another_protocol_is_evaluated_again_under_the_candidates(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-protocol", "registry.policy": "auto"})
    v1 = _register(settings, "m-protocol", 0.9, protocol="limit-1").version
    with pytest.raises(RegistryError, match="under protocol full"):
        _register(settings, "m-protocol", 0.5, protocol="full")
    asked: list[str] = []

    def evaluate_champion(version: str) -> GateMetrics:
        asked.append(version)
        return _metrics("s1", 0.4, protocol="full")

    result = _register(settings, "m-protocol", 0.5, protocol="full", evaluate_champion=evaluate_champion)
    assert asked == [v1], "the champion's limit-1 numbers must not stand in for a full evaluation"
    assert result.verdict.passed and result.verdict.champion == _metrics("s1", 0.4, protocol="full")


def test_a_champion_evaluation_under_yet_another_protocol_is_refused_and_recorded_as_failed(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-mismatch", "registry.policy": "auto"})
    _register(settings, "m-mismatch", 0.9, protocol="limit-1")
    with pytest.raises(RegistryError, match="different protocols"):
        _register(
            settings,
            "m-mismatch",
            0.5,
            protocol="full",
            evaluate_champion=lambda version: GateMetrics("s1", 1, 0.4, 0.0, "limit-2"),
        )
    client = mlflow_client(settings.tracking_uri)
    refused = client.get_model_version("m-mismatch", "2").tags
    assert refused["gate.verdict"] == "fail" and "different protocols" in refused["gate.reason"]


def test_a_checkpoint_the_gate_could_not_judge_is_judged_when_registered_again(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-again", "registry.policy": "auto"})
    _register(settings, "m-again", 0.2, protocol="limit-1")
    checkpoint = _checkpoint(home / "m-again", "judged-later")
    candidate = GateMetrics("s1", 1, 0.6, 0.0, "full", {f"inst-{j}": (0.6,) for j in range(10)})
    with pytest.raises(RegistryError, match="has no evaluation on s1"):  # the champion under "full" is missing
        register(settings, checkpoint, candidate, {"mean_reward": 0.6}, who="alice")
    champion = GateMetrics("s1", 1, 0.2, 0.0, "full", {f"inst-{j}": (0.2,) for j in range(10)})
    again = register(settings, checkpoint, candidate, {"mean_reward": 0.6}, who="alice",
                     evaluate_champion=lambda version: champion)  # fmt: skip
    assert (again.version, again.verdict.decision, again.aliases) == ("2", "pass", (CHAMPION,))
    assert registered_version(mlflow_client(settings.tracking_uri), "m-again", again.run_id) == "2"


def test_training_run_unknown_to_this_server_is_kept_as_a_tag_and_a_registry_run_is_used(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-foreign"})
    ckpt = _checkpoint(home / "m-foreign", "trained-elsewhere")
    foreign = "0123456789abcdef0123456789abcdef"
    write_run_id(ckpt.parent, foreign)
    result = register(settings, ckpt, GateMetrics("s1", 1, 0.3, 0.0, "p1"), {"mean_reward": 0.3}, who="alice")
    client = mlflow_client(settings.tracking_uri)
    tags = client.get_model_version("m-foreign", result.version).tags
    assert result.run_id != foreign and client.get_run(result.run_id).info.run_name.startswith("register-")
    assert tags["training.run_id_unresolved"] == foreign and tags["training_run_id"] == "unknown"
    assert tags["base_model"] == "base/tiny-llama"


def test_other_mlflow_failures_reading_the_training_run_are_one_line_registry_errors(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-denied"})
    ckpt = _checkpoint(home / "m-denied", "trained")
    write_run_id(ckpt.parent, "0123456789abcdef0123456789abcdef")

    def denied(self: MlflowClient, run_id: str) -> Any:
        raise MlflowException(f"User may not read run {run_id}\ndetails", error_code=PERMISSION_DENIED)

    monkeypatch.setattr(MlflowClient, "get_run", denied)
    with pytest.raises(RegistryError, match="cannot read training run 0123") as refused:
        register(settings, ckpt, GateMetrics("s1", 1, 0.3, 0.0, "p1"), {"mean_reward": 0.3}, who="alice")
    assert "\n" not in str(refused.value) and "may not read" in str(refused.value)


def test_a_leftover_partial_download_is_not_trusted(home: Path, tmp_path: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-cache"})
    version = _register(settings, "m-cache", 0.3).version
    client = mlflow_client(settings.tracking_uri)
    partial = tmp_path / "cache" / "m-cache" / version
    (partial / "model").mkdir(parents=True)  # a killed download: config.json arrived, the weights did not
    (partial / "model" / "config.json").write_text("{}")
    resolved = resolve_model(client, f"models:/m-cache/{version}", tmp_path / "cache")
    assert (resolved.local_dir / "model.safetensors").stat().st_size == 64, "the partial copy was reused"
    assert json.loads((resolved.local_dir / "config.json").read_text())["model_type"] == "llama"
    assert (resolved.local_dir.parent / COMPLETE_MARKER).exists()
    assert sorted(p.name for p in (tmp_path / "cache" / "m-cache").iterdir()) == [version], (
        "temporary download directories (or lock files) must not stay behind"
    )
    assert len(list((tmp_path / "locks").glob("download-*.lock"))) == 1, "the download's lock is not beside the cache"


def test_a_download_finished_meanwhile_by_another_evaluation_is_kept(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.artifacts

    settings = make_settings(home, **{"registry.model_name": "m-race-cache"})
    version = _register(settings, "m-race-cache", 0.3).version
    client = mlflow_client(settings.tracking_uri)
    target = tmp_path / "cache" / "m-race-cache" / version
    real_download = mlflow.artifacts.download_artifacts

    def other_evaluation_finishes_first(**kwargs: Any) -> str:
        (target / "model").mkdir(parents=True)
        (target / "model" / "config.json").write_text('{"model_type": "llama", "theirs": true}')
        (target / COMPLETE_MARKER).write_text("done\n")
        return real_download(**kwargs)

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", other_evaluation_finishes_first)
    resolved = resolve_model(client, f"models:/m-race-cache/{version}", tmp_path / "cache")
    assert resolved.local_dir == target / "model"
    assert json.loads((target / "model" / "config.json").read_text())["theirs"], "the finished copy was overwritten"
    assert [p.name for p in target.parent.iterdir() if ".partial-" in p.name] == []


def test_a_challenger_judged_again_against_a_new_champion_and_failing_loses_the_alias(home: Path) -> None:
    settings = make_settings(home, **{"registry.model_name": "m-rejudge", "registry.reward_floor": 0.0})
    client = mlflow_client(settings.tracking_uri)
    v1 = _register(settings, "m-rejudge", 0.2).version
    promote_version(settings, v1, "bob", "first")
    checkpoint = _checkpoint(home / "m-rejudge", "challenger-run")
    candidate = _metrics("s1", 0.5)
    second = register(settings, checkpoint, candidate, {"mean_reward": 0.5}, who="alice")
    assert second.aliases == (CHALLENGER,)
    # Killed after its challenger move: still `judged`; meanwhile a better version became champion.
    client.set_model_version_tag("m-rejudge", second.version, "registration.state", "judged")
    third = _register(settings, "m-rejudge", 0.9).version
    promote_version(settings, third, "bob", "better")
    client.set_registered_model_alias("m-rejudge", CHALLENGER, second.version)  # as when v3 was crowned by force
    again = register(settings, checkpoint, candidate, {"mean_reward": 0.5}, who="alice")
    assert again.version == second.version and again.verdict.champion_version == third
    assert again.verdict.decision == "fail" and alias_version(client, "m-rejudge", CHALLENGER) is None
    assert [m.kind for m in again.moves] == ["clear"]


def test_registering_and_fetching_a_version_draw_no_progress_bar(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    settings = make_settings(home, **{"registry.model_name": "m-quiet"})
    version = _register(settings, "m-quiet", 0.3).version
    resolve_model(mlflow_client(settings.tracking_uri), f"models:/m-quiet/{version}", home / "quiet-cache")
    assert "artifacts" not in capsys.readouterr().err  # MLflow's "Downloading artifacts: 25%|##5 …" bars
