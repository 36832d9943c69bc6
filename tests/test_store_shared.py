"""Stages sharing one DuckDB store at once, in separate processes: nobody waits for another stage, only for a write."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eval_world import SNAPSHOT, make_settings, tiny_model_dir, write_snapshot
from test_ingest import REPO, TOKEN, assert_same_data, contents, settings_for

from swerl_core import evaluate, ingest
from swerl_core.config import Secret
from swerl_core.demo.github_server import FakeGitHub
from swerl_core.demo.world import SampleWorld
from swerl_core.store import Store, StoreError

# Columns of an evaluation that do not depend on where or when it ran.
_EVALUATION = (
    "snapshot_id, split, samples, backend, n_instances, n_samples, mean_reward, format_error_rate, "
    "exact_match_rate, apply_rate, best_of_k_reward, tokens_generated, per_repo_json, protocol"
)


@pytest.fixture
def server(sample_world: SampleWorld) -> Iterator[FakeGitHub]:
    """The fake GitHub server over the pristine sample world, accepting ``TOKEN``."""
    with FakeGitHub(sample_world, token=TOKEN) as fake:
        yield fake


def _home(root: Path) -> Path:
    """A home with the evaluation snapshot and a tiny checkpoint in it (no database yet)."""
    write_snapshot(root, n_heldout=3)
    shutil.copytree(tiny_model_dir(), root / "checkpoints" / "run" / "final")
    return root


def _evaluate(home: Path) -> evaluate.EvalReport:
    settings = make_settings(home, **{"evaluate.max_new_tokens": 8})
    return evaluate.run(settings, evaluate.EvaluateRequest(str(home / "checkpoints" / "run" / "final"), SNAPSHOT))


def _rows(home: Path, sql: str) -> list[tuple[Any, ...]]:
    with Store.open(home / "swerl.duckdb", read_only=True) as store:
        return store.connection.execute(sql).fetchall()


@pytest.mark.slow
def test_evaluation_during_an_ingest_both_succeed_with_the_rows_of_running_them_one_after_the_other(
    tmp_path: Path, server: FakeGitHub
) -> None:
    together, apart = _home(tmp_path / "together"), _home(tmp_path / "apart")
    # Hold the ingest inside a batch (a linked issue fetched one by one) while the evaluation runs.
    held = server.inject(rf"^/repos/{REPO}/issues/36$", kind="delay", delay_s=10)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWERL_", "GITHUB_TOKEN", "GH_TOKEN"))}
    env.update(
        GITHUB_TOKEN=TOKEN,
        SWERL_INGEST__BATCH_SIZE="3",
        SWERL_GITHUB__SECONDS_BETWEEN_REQUESTS="0",
        SWERL_GITHUB__LOCAL_CLONES="true",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "swerl_core.cli", "--home", str(together), "ingest", "--repo", REPO,
         "--api-url", server.url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while held.times > 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert held.times == 0 and proc.poll() is None, "the ingest should be in flight, held inside a batch"
        report = _evaluate(together)  # before this store, the ingest's lock made it fail "database is in use"
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output[-2000:]
    assert report.metrics.n_instances == 3

    settings = settings_for(apart, server.url, **{"ingest.batch_size": 3})
    ingest.run(settings, ingest.IngestRequest((REPO,), token=Secret(TOKEN)))
    _evaluate(apart)

    assert_same_data(contents(together), contents(apart))
    assert _rows(together, "SELECT status FROM ingest_runs") == [("ok",)]
    evaluated = _rows(together, f"SELECT {_EVALUATION} FROM evaluations")
    assert len(evaluated) == 1 and evaluated == _rows(apart, f"SELECT {_EVALUATION} FROM evaluations")


_WRITER = """
import sys, time
from swerl_core.store import Store
with Store.open(sys.argv[1]).transaction():
    print("writing", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_reader_waits_for_a_short_write_and_a_writer_gives_up_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "swerl.duckdb"
    Store.shared(path).ingest.start_run([REPO])  # the first write creates the database
    holder = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "writing"
        # A reader is refused while the file is open for writing, and retries until the write ends.
        assert Store.shared(path, lock_timeout_s=60).ingest.repo_status() == []
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
        holder.wait()
    holder = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "writing"
        with pytest.raises(StoreError, match=rf"database is in use by PID {holder.pid} \(waited 0.2 s"):
            Store.shared(path, lock_timeout_s=0.2).ingest.start_run([REPO])
    finally:
        holder.kill()
        holder.wait()


def test_a_shared_store_without_a_database_has_no_evaluations_and_creates_nothing_on_reads(tmp_path: Path) -> None:
    path = tmp_path / "home" / "swerl.duckdb"
    store = Store.shared(path)
    assert store.evaluations.latest("s", 1, "p", model_ref="/ckpt") is None
    with pytest.raises(StoreError, match="no database at"):
        store.ingest.repo_status()
    assert not path.exists()
