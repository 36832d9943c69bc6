"""Every ``swerl`` verb with bad values: an exit code, a one-line message, never a traceback.

One test per row, so a new verb gets rows too. Each row runs the real CLI in a subprocess
(``python -m swerl_core.cli``) in a fresh home; the setup step writes whatever the row needs
(a file where the home should be, a config that is not UTF-8, a damaged database…).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID, write_sample_snapshot

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Row:
    """One bad input: the arguments after ``swerl``, extra environment, setup, expected exit and message."""

    args: tuple[str, ...]
    code: int
    says: str
    env: dict[str, str] = field(default_factory=dict)
    setup: Setup | None = None


def _write(name: str, data: bytes) -> Setup:
    return lambda root: (root / name).write_bytes(data)


def _damaged_database(root: Path) -> None:
    home = root / "home"
    home.mkdir()
    (home / "swerl.duckdb").write_bytes(b"this is not a DuckDB database\n" * 400)


def _corrupt_mlflow_db(root: Path) -> None:
    home = root / "home"
    home.mkdir()
    (home / "mlflow.db").write_bytes(bytes(range(256)) * 80)


def _home(root: Path) -> None:
    (root / "home").mkdir()


def _home_is_a_file(root: Path) -> None:
    (root / "home").write_text("I am a file\n")


def _altered_snapshot(split: str) -> Setup:
    """The sample snapshot with ``split`` rewritten after it was written: the same row count, other content."""

    def setup(root: Path) -> None:
        path = write_sample_snapshot(root / "home") / f"{split}.parquet"
        table = pq.read_table(path)
        index = table.column_names.index("problem_statement")
        pq.write_table(table.set_column(index, "problem_statement", pa.array(["altered"] * table.num_rows)), path)
        (root / "model").mkdir()

    return setup


def _snapshot_and_model(config: str) -> Setup:
    """The sample snapshot and a model folder whose ``config.json`` holds ``config``."""

    def setup(root: Path) -> None:
        write_sample_snapshot(root / "home")
        (root / "model").mkdir()
        (root / "model" / "config.json").write_text(config)

    return setup


def _server_recipe(root: Path) -> None:
    """The sample snapshot, a model folder, and a recipe generating through a rollout server synced by NCCL."""
    write_sample_snapshot(root / "home")
    (root / "model").mkdir()
    (root / "model" / "config.json").write_text("{}")  # refused before the model is read
    grpo = "grpo:\n  use_vllm: true\n  vllm_mode: server\n  vllm_server_url: http://127.0.0.1:9\n"
    (root / "r.yaml").write_text(f"name: served\nbase_model: {root / 'model'}\n{grpo}")


def _server_recipe_unwritable_weights(root: Path) -> None:
    """A directory-synced server recipe whose weights folder lies under a file: it can never be written."""
    _server_recipe(root)
    (root / "f").write_text("x")
    extra = f"  vllm_weight_sync: directory\n  vllm_weights_dir: {root / 'f' / 'w'}\n"
    (root / "r.yaml").write_text((root / "r.yaml").read_text() + extra)


def _snapshot_without_train_rows(root: Path) -> None:
    folder = root / "home" / "snapshots" / "only-heldout"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"id": "only-heldout", "train_rows": 0, "heldout_rows": 3}')


def _recipe_with_a_key_twice(root: Path) -> None:
    _home(root)
    (root / "r.yaml").write_text("name: twice\nbase_model: models/tiny\nseed: 0\nseed: 1\n")


INGEST = ("ingest", "--repo", "acme/textkit")
UNSET = "<unset>"
HEAVY = ("evaluate", "train", "init-model", "register", "rollback", "promote", "models")
"""Verbs that import torch or MLflow: seconds per row, so marked slow."""
UNREACHABLE = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
ROWS: dict[str, Row] = {
    # ingest
    "ingest-since-out-of-range": Row((*INGEST, "--since", "0001-01-01T00:00:00+05:00"), 2, "expected an ISO date"),
    "ingest-since-not-a-date": Row((*INGEST, "--since", "last tuesday"), 2, "expected an ISO date"),
    "ingest-api-url-not-a-url": Row((*INGEST, "--api-url", "not-a-url"), 2, "invalid setting github.api_url"),
    "ingest-api-url-ftp": Row((*INGEST, "--api-url", "ftp://example.com/api"), 2, "invalid setting github.api_url"),
    "ingest-api-url-open-bracket": Row((*INGEST, "--api-url", "http://[::1"), 2, "invalid setting github.api_url"),
    "ingest-env-api-url": Row(INGEST, 2, "invalid setting github.api_url", {"SWERL_GITHUB_API_URL": "http://[::1"}),
    "ingest-repo-with-query": Row(("ingest", "--repo", "acme/textkit?x=1"), 2, "expected OWNER/NAME"),
    "ingest-repo-dot-dot": Row(("ingest", "--repo", "acme/.."), 2, "expected OWNER/NAME"),
    "ingest-config-repo-dot-dot": Row(
        ("--config", "{root}/c.yaml", "ingest"),
        2,
        "invalid setting ingest.repos",
        setup=_write("c.yaml", b"ingest:\n  repos: [../../etc]\n"),
    ),  # fmt: skip
    "ingest-home-is-a-file": Row(INGEST, 2, "invalid setting home", setup=_home_is_a_file),
    "ingest-home-read-only": Row(INGEST, 1, "cannot create", {"SWERL_HOME": "/proc/swerl-home/inside"}),
    "ingest-config-not-utf8": Row(
        ("--config", "{root}/c.yaml", *INGEST),
        2,
        "is not UTF-8",
        setup=_write("c.yaml", b"ingest:\n  since: \xff\xfe\n"),
    ),
    "ingest-config-invalid-date": Row(
        ("--config", "{root}/c.yaml", *INGEST), 2, "invalid", setup=_write("c.yaml", b"ingest:\n  since: 2025-02-30\n")
    ),
    "ingest-timeout-inf": Row(INGEST, 2, "expected a finite number", {"SWERL_GITHUB__TIMEOUT_S": "inf"}),
    "ingest-timeout-nan": Row(INGEST, 2, "expected a finite number", {"SWERL_GITHUB__TIMEOUT_S": "nan"}),
    "ingest-timeout-overflows": Row(
        INGEST, 2, "invalid setting github.timeout_s (SWERL_GITHUB__TIMEOUT_S)", {"SWERL_GITHUB__TIMEOUT_S": "1e300"}
    ),
    "ingest-throttle-overflows": Row(
        INGEST,
        2,
        "invalid setting github.seconds_between_requests (SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS)",
        {"SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS": "1e300"},
    ),
    "ingest-config-key-twice": Row(
        ("--config", "{root}/c.yaml", *INGEST),
        2,
        "c.yaml sets github.per_page twice (lines 2 and 4)",
        setup=_write("c.yaml", b"github:\n  per_page: 10\n  max_retries: 2\n  per_page: 50\n"),
    ),
    "ingest-home-a-list": Row(
        ("--config", "{root}/c.yaml", *INGEST),
        2,
        "invalid setting home",
        {"SWERL_HOME": UNSET},
        _write("c.yaml", b"home: [a, b]\n"),
    ),
    "ingest-home-as-a-section": Row(INGEST, 2, "invalid setting home", {"SWERL_HOME__X": "1"}),
    "ingest-damaged-database": Row(INGEST, 1, "is damaged", setup=_damaged_database),
    "ingest-no-repository": Row(("ingest",), 1, "no repository to ingest"),
    # status
    "status-missing-home": Row(("status",), 1, "no SWERL_HOME at"),
    "status-empty-home": Row(("status",), 1, "run `swerl ingest` first", setup=_home),
    "status-damaged-database": Row(("status",), 1, "is damaged", setup=_damaged_database),
    # curate
    "curate-missing-home": Row(("curate",), 1, "no SWERL_HOME at"),
    "curate-empty-home": Row(("curate",), 1, "no database at", setup=_home),
    "curate-heldout-after-not-a-date": Row(("curate", "--heldout-after", "2025-13-01"), 2, "expected an ISO date"),
    "curate-damaged-database": Row(("curate",), 1, "is damaged", setup=_damaged_database),
    "curate-chars-per-token-tiny": Row(
        ("curate",), 2, "invalid setting curate.chars_per_token", {"SWERL_CURATE__CHARS_PER_TOKEN": "1e-300"}
    ),
    "curate-name-empty": Row(("curate", "--name", ""), 1, "invalid snapshot name ''", setup=_home),
    "curate-name-newline": Row(("curate", "--name", "a\nb"), 1, "invalid snapshot name 'a\\nb'", setup=_home),
    "curate-name-escape": Row(
        ("curate", "--name", "\x1b[31mred"), 1, "no newline, tab or terminal escape", setup=_home
    ),
    "curate-name-too-long": Row(("curate", "--name", "n" * 101), 1, "1 to 100 printable characters", setup=_home),
    # evaluate, train, init-model, register
    "evaluate-missing-home": Row(("evaluate", "--model", "latest"), 1, "no SWERL_HOME at"),
    "evaluate-missing-model": Row(
        ("evaluate", "--model", "{root}/nowhere", "--snapshot", "nope"), 1, "no model directory", setup=_home
    ),
    "evaluate-latest-without-runs": Row(("evaluate", "--model", "latest"), 1, "no finished training run", setup=_home),
    "evaluate-vllm-latest-without-runs": Row(
        ("evaluate", "--model", "latest", "--backend", "vllm"), 1, "no finished training run", setup=_home
    ),
    "evaluate-vllm-kv-cache-junk": Row(
        ("evaluate", "--model", "{root}/model", "--snapshot", SAMPLE_SNAPSHOT_ID, "--backend", "vllm"),
        1,
        "VLLM_CPU_KVCACHE_SPACE must be a whole number of GiB",
        env={"VLLM_CPU_KVCACHE_SPACE": "junk"},
        setup=_snapshot_and_model('{"hidden_size": 128, "num_attention_heads": 4}'),
    ),
    "evaluate-vllm-config-not-json": Row(
        ("evaluate", "--model", "{root}/model", "--snapshot", SAMPLE_SNAPSHOT_ID, "--backend", "vllm"),
        1,
        "cannot read the model's config",
        setup=_snapshot_and_model("{not json"),
    ),
    "evaluate-bad-samples": Row(("evaluate", "--model", "m", "--snapshot", "s", "--samples", "many"), 2, "invalid"),
    "train-missing-recipe": Row(("train", "--recipe", "{root}/missing.yaml"), 2, "missing.yaml", setup=_home),
    "train-unknown-recipe-name": Row(("train", "--recipe", "no-such"), 2, "shipped recipes (demo-cpu", setup=_home),
    "train-missing-home": Row(("train", "--recipe", "demo-cpu"), 1, "no SWERL_HOME at"),
    "train-recipe-key-twice": Row(
        ("train", "--recipe", "{root}/r.yaml"),
        2,
        "r.yaml sets seed twice (lines 3 and 4)",
        setup=_recipe_with_a_key_twice,
    ),
    "train-snapshot-without-train-rows": Row(
        ("train", "--recipe", "demo-cpu", "--snapshot", "only-heldout"),
        1,
        "snapshot 'only-heldout' has no training rows",
        setup=_snapshot_without_train_rows,
    ),
    "init-model-into-a-file": Row(("init-model", "--tiny", "{root}/f"), 1, "f", setup=_write("f", b"x")),
    "register-missing-model": Row(
        ("register", "--model", "{root}/nowhere", "--snapshot", "s"), 1, "no model directory", setup=_home
    ),
    # a snapshot whose data changed after curate wrote it: every reader checks the manifest's SHA-256
    "train-server-nccl-on-a-cpu": Row(
        ("train", "--recipe", "{root}/r.yaml", "--snapshot", SAMPLE_SNAPSHOT_ID),
        1,
        "grpo.vllm_weight_sync: nccl needs CUDA on the trainer; on a CPU set grpo.vllm_weight_sync: directory",
        setup=_server_recipe,
    ),
    "train-server-weights-dir-unwritable": Row(
        ("train", "--recipe", "{root}/r.yaml", "--snapshot", SAMPLE_SNAPSHOT_ID, "--run-name", "served"),
        1,
        "grpo.vllm_weights_dir: cannot write weights versions to {root}/f/w/served (File exists)",
        setup=_server_recipe_unwritable_weights,
    ),
    "train-altered-snapshot": Row(
        ("train", "--recipe", "demo-cpu", "--snapshot", SAMPLE_SNAPSHOT_ID),
        1,
        "train.parquet does not match the SHA-256 in the manifest",
        setup=_altered_snapshot("train"),
    ),
    "evaluate-altered-snapshot": Row(
        ("evaluate", "--model", "{root}/model", "--snapshot", SAMPLE_SNAPSHOT_ID),
        1,
        "heldout.parquet does not match the SHA-256 in the manifest",
        setup=_altered_snapshot("heldout"),
    ),
    "register-altered-snapshot": Row(
        ("register", "--model", "{root}/model", "--snapshot", SAMPLE_SNAPSHOT_ID),
        1,
        "heldout.parquet does not match the SHA-256 in the manifest",
        setup=_altered_snapshot("heldout"),
    ),
    # the model registry, and the gate's settings (checked before anything is registered)
    "register-alpha-one": Row(
        ("register", "--model", "{root}/m", "--snapshot", "s"),
        2,
        "invalid setting registry.alpha (SWERL_REGISTRY__ALPHA): expected a number in (0, 0.5], got 1",
        {"SWERL_REGISTRY__ALPHA": "1"},
    ),
    "register-alpha-seven": Row(
        ("register", "--model", "{root}/m", "--snapshot", "s"), 2, "got 7", {"SWERL_REGISTRY__ALPHA": "7"}
    ),
    "register-no-bootstrap-resamples": Row(
        ("register", "--model", "{root}/m", "--snapshot", "s"),
        2,
        "invalid setting registry.bootstrap_resamples",
        {"SWERL_REGISTRY__BOOTSTRAP_RESAMPLES": "0"},
    ),
    "register-margin-unreachable": Row(
        ("register", "--model", "{root}/m", "--snapshot", "s"), 2, "registry.margin", {"SWERL_REGISTRY__MARGIN": "2"}
    ),
    "models-name-with-an-escape": Row(
        ("models",), 2, "invalid setting registry.model_name", {"SWERL_REGISTRY__MODEL_NAME": "swerl\x1b[2Jpolicy"}
    ),
    "models-name-with-both-quotes": Row(
        ("models",), 2, "both kinds of quote", {"SWERL_REGISTRY__MODEL_NAME": 'it\'s "it"'}
    ),
    "rollback-before-any-model": Row(("rollback",), 1, "no model registry yet", setup=_home),
    "promote-before-any-model": Row(("promote", "1"), 1, "no model registry yet", setup=_home),
    "models-missing-home": Row(("models",), 1, "no SWERL_HOME at"),
    "promote-not-a-number": Row(("promote", "abc"), 2, "expected a version number"),
    "models-bad-tracking-uri": Row(("models",), 1, "unreachable", {"MLFLOW_TRACKING_URI": "bogus://nowhere"}),
    "models-registry-unreachable": Row(("models",), 1, "cannot reach MLflow at http://127.0.0.1:9", UNREACHABLE),
    "promote-registry-unreachable": Row(("promote", "1"), 1, "cannot reach MLflow at", UNREACHABLE),
    "rollback-registry-unreachable": Row(("rollback",), 1, "cannot reach MLflow at", UNREACHABLE),
    "models-corrupt-mlflow-db": Row(("models",), 1, "unreachable or unreadable", setup=_corrupt_mlflow_db),
    # shared storage (storage.uri): checked before anything runs, and never an echo of keys written into it
    "curate-storage-uri-wrong-scheme": Row(
        ("curate",), 2, "invalid setting storage.uri", {"SWERL_STORAGE__URI": "gs://b/p"}
    ),
    "curate-storage-uri-no-bucket": Row(("curate",), 2, "names no bucket", {"SWERL_STORAGE__URI": "s3:///prefix"}),
    "curate-storage-uri-with-keys": Row(
        ("curate",), 2, "use AWS_ACCESS_KEY_ID", {"SWERL_STORAGE__URI": "s3://AKIAX:hunter2secret@bucket/p"}
    ),
    "curate-storage-config-bad-bucket": Row(
        ("--config", "{root}/c.yaml", "curate"),
        2,
        "not a valid bucket name",
        setup=_write("c.yaml", b"storage:\n  uri: s3://My_Bucket/swerl\n"),
    ),
    "curate-storage-endpoint-not-a-url": Row(
        ("curate",), 2, "invalid setting storage.endpoint_url", {"SWERL_STORAGE__ENDPOINT_URL": "minio:9000"}
    ),
    "evaluate-model-bad-s3-uri": Row(
        ("evaluate", "--model", "s3://", "--snapshot", "s"), 1, "bad storage URI", setup=_home
    ),
    "evaluate-storage-unreachable": Row(
        ("evaluate", "--model", "s3://bkt/x/checkpoints/r/final", "--snapshot", "s"),
        1,
        "shared storage s3://bkt/x/snapshots/s failed",
        {
            "SWERL_STORAGE__URI": "s3://bkt/x",
            "SWERL_STORAGE__ENDPOINT_URL": "http://127.0.0.1:9",
            "SWERL_STORAGE__MAX_ATTEMPTS": "1",
            "AWS_ACCESS_KEY_ID": "AKIAX",
            "AWS_SECRET_ACCESS_KEY": "x",
        },
    ),  # fmt: skip
}


def _env(root: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWERL_", "MLFLOW_TRACKING_URI", "GITHUB_TOKEN"))}
    env.update(SWERL_HOME=str(root / "home"), GITHUB_TOKEN="ghp_unused", MLFLOW_DISABLE_TELEMETRY="true")
    env.update({k: v.replace("{root}", str(root)) for k, v in extra.items()})
    return {k: v for k, v in env.items() if v != UNSET}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n.startswith(HEAVY) else []) for n in sorted(ROWS)]
)
def test_bad_input_gives_an_exit_code_and_one_line(tmp_path: Path, name: str) -> None:
    row = ROWS[name]
    if row.setup is not None:
        row.setup(tmp_path)
    args = [a.replace("{root}", str(tmp_path)) for a in row.args]
    proc = subprocess.run(
        [sys.executable, "-m", "swerl_core.cli", *args],
        env=_env(tmp_path, row.env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert proc.returncode == row.code, err
    lines = [line for line in err.splitlines() if not line.startswith(("usage:", " "))]
    message = lines[-1] if lines else ""
    assert len(lines) == 1, f"expected one message line, got: {err!r}"
    assert message.startswith("swerl ") and row.says.replace("{root}", str(tmp_path)) in message, message
    assert not (tmp_path / "['a', 'b']").exists() and not (tmp_path / "{'x': '1'}").exists()
    assert "hunter2secret" not in proc.stderr + proc.stdout


def test_curate_on_a_missing_home_creates_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "swerl_core.cli", "curate"], env=_env(tmp_path, {}), capture_output=True, text=True
    )
    assert proc.returncode == 1 and not (tmp_path / "home" / "swerl.duckdb").exists()
