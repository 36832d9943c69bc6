"""Shared storage on a real S3-compatible server (moto's, over HTTP on 127.0.0.1): curate publishes, an empty
second home fetches the snapshot, trains and registers from it, damaged or partial publications are refused, and the
S3 keys never reach DuckDB, MLflow or the logs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from swerl_core import curate, ingest
from swerl_core.bucket import INDEX, ensure_snapshot, publish_checkpoint, publish_snapshot, snapshot_location
from swerl_core.cli import main
from swerl_core.config import ConfigError, Secret, Settings, load_settings
from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID, write_sample_snapshot
from swerl_core.demo.world import build_world
from swerl_core.errors import ModelError, SnapshotError, StorageError
from swerl_core.models import resolve_model_reference
from swerl_core.snapshots import read_manifest, snapshot_damage

BUCKET = "swerl"
ACCESS_KEY = "AKIASWERLSTORAGETEST"
SECRET_KEY = "swerl-storage-secret-7f3c9a1e5b"  # a value that must never be written anywhere
TOKEN = "ghp_storageTestToken0000000000000000000"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port with the bucket made, and the AWS keys only in the environment."""
    import boto3
    from moto.server import ThreadedMotoServer

    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,  # nothing from the machine's ~/.aws
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


def _settings(home: Path, endpoint: str, prefix: str, **overrides: Any) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    return load_settings(
        env={},
        overrides={"home": home, "storage.uri": f"s3://{BUCKET}/{prefix}", "storage.endpoint_url": endpoint,
                   "storage.max_attempts": 1, **overrides},
    )  # fmt: skip


def _bucket(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint)


def _assert_no_keys_under(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert SECRET_KEY.encode() not in data and ACCESS_KEY.encode() not in data, f"S3 key found in {path}"


@pytest.mark.slow
def test_curate_publishes_and_an_empty_home_fetches_the_same_snapshot(tmp_path: Path, s3_endpoint: str) -> None:
    world = build_world(tmp_path / "world")
    machine_a = _settings(tmp_path / "a", s3_endpoint, "curated")
    with FakeGitHub(world, token=TOKEN) as fake:
        ingest_settings = load_settings(
            env={},
            overrides={"home": machine_a.home, "github.api_url": fake.url, "github.seconds_between_requests": 0,
                       "github.local_clones": True, "ingest.git_workers": 2},
        )  # fmt: skip
        ingest.run(ingest_settings, ingest.IngestRequest(repos=("acme/textkit",), token=Secret(TOKEN)))
    snap = curate.run(machine_a, curate.CurateRequest(heldout_after=datetime(2026, 3, 1, tzinfo=UTC)))
    assert snap.uri == f"s3://{BUCKET}/curated/snapshots/{snap.id}"

    index = json.loads(
        _bucket(s3_endpoint).get_object(Bucket=BUCKET, Key=f"curated/snapshots/{snap.id}/{INDEX}")["Body"].read()
    )
    assert sorted(f["path"] for f in index["files"]) == ["heldout.parquet", "manifest.json", "train.parquet"]

    machine_b = _settings(tmp_path / "b", s3_endpoint, "curated")
    ensure_snapshot(machine_b, snap.id)
    manifest = read_manifest(machine_b.snapshots_dir, snap.id)
    assert snapshot_damage(machine_b.snapshots_dir, snap.id, manifest) is None  # curate's own SHA-256s hold
    for name in ("train.parquet", "heldout.parquet", "manifest.json"):
        assert (machine_b.snapshots_dir / snap.id / name).read_bytes() == (snap.path / name).read_bytes(), name
    _assert_no_keys_under(machine_a.home, machine_b.home)


@pytest.mark.slow
def test_an_empty_home_trains_on_a_published_snapshot_and_another_registers_the_published_checkpoint(
    tmp_path: Path,
    s3_endpoint: str,
    settings: Settings,
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from mlflow import MlflowClient

    from swerl_core.train import TrainRequest, run
    from swerl_core.train.config import train_config_from_dict
    from swerl_core.train.tracking import CHECKPOINT_URI_TAG

    caplog.set_level(logging.INFO, logger="swerl")
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"  # one tracking server for the training and the registry pods
    machine_a = _settings(settings.home, s3_endpoint, "run")  # holds the sample snapshot
    assert publish_snapshot(machine_a, SAMPLE_SNAPSHOT_ID) == f"s3://{BUCKET}/run/snapshots/{SAMPLE_SNAPSHOT_ID}"

    trainer = _settings(tmp_path / "trainer", s3_endpoint, "run", mlflow_tracking_uri=tracking)
    recipe = {"name": "shared", "base_model": str(model_dir), "max_prompt_length": 1024, "max_completion_length": 48,
              "grpo": {"prompts_per_step": 2, "num_generations": 2, "per_device_batch_size": 4, "max_steps": 1,
                       "save_steps": 1}}  # fmt: skip
    request = TrainRequest(train_config_from_dict(recipe), snapshot_id=SAMPLE_SNAPSHOT_ID, run_name="shared-run")
    result = run(trainer, request)
    uri = f"s3://{BUCKET}/run/checkpoints/shared-run/final"
    assert result.checkpoint_uri == uri
    assert (trainer.snapshots_dir / SAMPLE_SNAPSHOT_ID / "train.parquet").is_file()
    training_run = MlflowClient(tracking).get_run(result.mlflow_run_id or "")
    assert training_run.data.tags[CHECKPOINT_URI_TAG] == uri

    registry_home = tmp_path / "registry"
    for key, value in {
        "MLFLOW_TRACKING_URI": tracking,
        "SWERL_STORAGE__URI": f"s3://{BUCKET}/run",
        "SWERL_STORAGE__ENDPOINT_URL": s3_endpoint,
        "SWERL_EVALUATE__MAX_NEW_TOKENS": "8",
        "SWERL_EVALUATE__LIMIT": "2",
        "SWERL_REWARD__WORKERS": "1",
        "SWERL_REGISTRY__MODEL_NAME": "shared",
    }.items():
        monkeypatch.setenv(key, value)
    assert main(["--home", str(registry_home), "register", "--model", uri, "--snapshot", SAMPLE_SNAPSHOT_ID]) == 0
    cached = registry_home / "models" / "s3" / BUCKET / "run" / "checkpoints" / "shared-run" / "final"
    assert (cached / "model.safetensors").read_bytes() == (result.model_dir / "model.safetensors").read_bytes()
    [version] = MlflowClient(tracking).search_model_versions("name='shared'")
    assert version.run_id == result.mlflow_run_id  # lineage survives the trip through the bucket

    _assert_no_keys_under(settings.home, trainer.home, registry_home, tmp_path / "mlflow.db")
    for mlflow_run in MlflowClient(tracking).search_runs([training_run.info.experiment_id]):
        recorded = json.dumps({**mlflow_run.data.params, **mlflow_run.data.tags})
        assert SECRET_KEY not in recorded and ACCESS_KEY not in recorded
    printed = caplog.text + "".join(capfd.readouterr())
    assert f"published {uri}" in caplog.text and "fetched s3://" in caplog.text  # the lines were captured
    assert SECRET_KEY not in printed and ACCESS_KEY not in printed


def _published_sample(tmp_path: Path, endpoint: str, prefix: str) -> Settings:
    machine_a = _settings(tmp_path / "a", endpoint, prefix)
    write_sample_snapshot(machine_a.home)
    publish_snapshot(machine_a, SAMPLE_SNAPSHOT_ID)
    return machine_a


def _fetch_refused(tmp_path: Path, endpoint: str, prefix: str) -> str:
    machine_b = _settings(tmp_path / "b", endpoint, prefix)
    with pytest.raises(StorageError) as refused:
        ensure_snapshot(machine_b, SAMPLE_SNAPSHOT_ID)
    assert not (machine_b.snapshots_dir / SAMPLE_SNAPSHOT_ID).exists(), "a refused fetch left files behind"
    assert len(str(refused.value).splitlines()) == 1
    return str(refused.value)


def test_a_corrupted_object_is_refused(tmp_path: Path, s3_endpoint: str) -> None:
    _published_sample(tmp_path, s3_endpoint, "corrupt")
    key = f"corrupt/snapshots/{SAMPLE_SNAPSHOT_ID}/train.parquet"
    body = bytearray(_bucket(s3_endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF  # one flipped byte: same size, different content
    _bucket(s3_endpoint).put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    assert "train.parquet does not match the SHA-256" in _fetch_refused(tmp_path, s3_endpoint, "corrupt")


def test_an_upload_without_its_index_is_refused_as_partial(tmp_path: Path, s3_endpoint: str) -> None:
    _published_sample(tmp_path, s3_endpoint, "partial")
    _bucket(s3_endpoint).delete_object(Bucket=BUCKET, Key=f"partial/snapshots/{SAMPLE_SNAPSHOT_ID}/{INDEX}")
    assert "holds a partial upload" in _fetch_refused(tmp_path, s3_endpoint, "partial")


def test_a_missing_file_is_refused(tmp_path: Path, s3_endpoint: str) -> None:
    _published_sample(tmp_path, s3_endpoint, "missing")
    _bucket(s3_endpoint).delete_object(Bucket=BUCKET, Key=f"missing/snapshots/{SAMPLE_SNAPSHOT_ID}/heldout.parquet")
    assert "heldout.parquet is missing" in _fetch_refused(tmp_path, s3_endpoint, "missing")


def test_an_index_that_points_outside_its_folder_is_refused(tmp_path: Path, s3_endpoint: str) -> None:
    machine_a = _published_sample(tmp_path, s3_endpoint, "escape")
    where = snapshot_location(machine_a.storage, SAMPLE_SNAPSHOT_ID)
    index = {"format": 1, "files": [{"path": "../../outside", "size": 1, "sha256": "0" * 64}]}
    _bucket(s3_endpoint).put_object(Bucket=BUCKET, Key=where.child(INDEX).key, Body=json.dumps(index).encode())
    assert "not a valid file index" in _fetch_refused(tmp_path, s3_endpoint, "escape")
    assert not (tmp_path / "outside").exists()


def test_nothing_published_is_a_clear_error(tmp_path: Path, s3_endpoint: str) -> None:
    assert "nothing is published at" in _fetch_refused(tmp_path, s3_endpoint, "empty")


def test_publishing_again_leaves_the_publication_as_it_was(tmp_path: Path, s3_endpoint: str) -> None:
    machine_a = _published_sample(tmp_path, s3_endpoint, "again")
    key = f"again/snapshots/{SAMPLE_SNAPSHOT_ID}/{INDEX}"
    first = _bucket(s3_endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    publish_snapshot(machine_a, SAMPLE_SNAPSHOT_ID)
    assert _bucket(s3_endpoint).get_object(Bucket=BUCKET, Key=key)["Body"].read() == first


def test_publishing_different_files_where_a_publication_stands_is_refused(tmp_path: Path, s3_endpoint: str) -> None:
    machine_a = _published_sample(tmp_path, s3_endpoint, "clash")
    (machine_a.snapshots_dir / SAMPLE_SNAPSHOT_ID / "heldout.parquet").write_bytes(b"another snapshot's rows")
    with pytest.raises(StorageError, match="already holds a different publication"):
        publish_snapshot(machine_a, SAMPLE_SNAPSHOT_ID)


def test_an_index_naming_a_file_and_a_folder_alike_is_refused(tmp_path: Path, s3_endpoint: str) -> None:
    machine_a = _published_sample(tmp_path, s3_endpoint, "alike")
    where = snapshot_location(machine_a.storage, SAMPLE_SNAPSHOT_ID)
    for name in ("a", "a/b"):
        _bucket(s3_endpoint).put_object(Bucket=BUCKET, Key=where.child(name).key, Body=b"x")
    entry = {"size": 1, "sha256": "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}  # sha256(b"x")
    index = {"format": 1, "files": [{"path": "a", **entry}, {"path": "a/b", **entry}]}
    _bucket(s3_endpoint).put_object(Bucket=BUCKET, Key=where.child(INDEX).key, Body=json.dumps(index).encode())
    assert "names a file and a folder alike" in _fetch_refused(tmp_path, s3_endpoint, "alike")


@pytest.mark.parametrize("snapshot_id", ["x/../sample", "../../outside/x", "..", ".hidden", "a b"])
def test_a_snapshot_id_that_is_a_path_is_refused_before_any_file_or_request(
    tmp_path: Path, s3_endpoint: str, snapshot_id: str
) -> None:
    machine = _settings(tmp_path / "home", s3_endpoint, "ids")
    write_sample_snapshot(machine.home)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SnapshotError, match="is not a snapshot id"):
        ensure_snapshot(machine, snapshot_id)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written or deleted, inside or outside the home


def test_a_local_snapshot_is_used_without_asking_the_store(tmp_path: Path) -> None:
    # storage points at a port nobody listens on: a snapshot already here must not need it
    machine = _settings(tmp_path / "home", "http://127.0.0.1:9", "local")
    write_sample_snapshot(machine.home)
    ensure_snapshot(machine, SAMPLE_SNAPSHOT_ID)
    with pytest.raises(StorageError, match=r"^shared storage s3://swerl/local/snapshots/other failed"):
        ensure_snapshot(machine, "other")


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("gs://bucket/prefix", "scheme is gs://"),
        ("bucket/prefix", "scheme is missing"),
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("s3://Bad_Bucket/x", "not a valid bucket name"),
        ("s3://bucket/a/../b", ". or .. segments"),
        ("s3://bucket/q//m", "empty segment"),  # would share a local cache folder with s3://bucket/q/m
        ("s3://bucket/x?versionId=1", "query or fragment"),
    ],
)
def test_a_bad_storage_uri_is_one_line_naming_the_key(uri: str, says: str) -> None:
    with pytest.raises(ConfigError) as bad:
        load_settings(env={"SWERL_STORAGE__URI": uri})
    message = str(bad.value)
    assert message.startswith("invalid setting storage.uri") and says in message and "\n" not in message


def test_keys_written_into_the_uri_are_refused_without_being_repeated() -> None:
    with pytest.raises(ConfigError) as bad:
        load_settings(env={"SWERL_STORAGE__URI": f"s3://{ACCESS_KEY}:{SECRET_KEY}@bucket/prefix"})
    assert "AWS_SECRET_ACCESS_KEY" in str(bad.value) and SECRET_KEY not in str(bad.value)
    with pytest.raises(ConfigError) as bad:
        load_settings(env={"SWERL_STORAGE__ENDPOINT_URL": f"http://{ACCESS_KEY}:{SECRET_KEY}@minio:9000"})
    assert "storage.endpoint_url" in str(bad.value) and SECRET_KEY not in str(bad.value)
    with pytest.raises(ConfigError, match="unknown setting storage.secret_access_key"):
        load_settings(env={"SWERL_STORAGE__SECRET_ACCESS_KEY": SECRET_KEY})


def test_model_references_keep_s3_checkpoints_as_written(tmp_path: Path) -> None:
    uri = "s3://swerl/prod/checkpoints/run-1/final"
    assert resolve_model_reference(uri, tmp_path) == uri
    with pytest.raises(ModelError, match="bad storage URI 's3://'"):
        resolve_model_reference("s3://", tmp_path)


def test_a_published_checkpoint_is_a_base_model_for_training(tmp_path: Path, s3_endpoint: str) -> None:
    from swerl_core.runs import read_run_id
    from swerl_core.train.trainer import resolve_model

    machine_a = _settings(tmp_path / "a", s3_endpoint, "base")
    final = machine_a.checkpoints_dir / "sft-run" / "final"
    final.mkdir(parents=True)
    (final / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (final / "model.safetensors").write_bytes(os.urandom(4096))
    uri = publish_checkpoint(machine_a, final, "sft-run", "run-123")
    assert uri == f"s3://{BUCKET}/base/checkpoints/sft-run/final"

    machine_b = _settings(tmp_path / "b", s3_endpoint, "base")
    local = Path(resolve_model(machine_b.home, uri, machine_b.storage))
    assert local == machine_b.home / "models" / "s3" / BUCKET / "base" / "checkpoints" / "sft-run" / "final"
    assert (local / "model.safetensors").read_bytes() == (final / "model.safetensors").read_bytes()
    assert read_run_id(local.parent) == "run-123"
    _bucket(s3_endpoint).put_object(Bucket=BUCKET, Key="base/checkpoints/sft-run/final/model.safetensors", Body=b"x")
    assert Path(resolve_model(machine_b.home, uri, machine_b.storage)) == local  # a complete copy is reused as is
    with pytest.raises(StorageError, match="does not match the SHA-256"):
        resolve_model(tmp_path / "c", uri, machine_b.storage)  # a fresh machine sees the damage
