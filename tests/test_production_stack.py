"""The production stack: infra/compose.yaml against the Compose specification, and its server settings on a real
PostgreSQL — a throw-away cluster, the Prefect server and the MLflow server on it, a flow run and a model version.

The Compose schema is the one check-jsonschema vendors (compose-spec/compose-spec, Apache-2.0: its
builtin_schemas/vendor/licenses/LICENSE.compose-spec). No Docker daemon exists here, so the images are not
built and the compose file is not started; the servers run from this venv with the same environment keys.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from swerl_core.train.distributed import free_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "infra" / "compose.yaml"
DATABASES_SQL = ROOT / "infra" / "postgres" / "databases.sql"
WORK_POOL = ROOT / "infra" / "k8s" / "swerl-gpu-base-job-template.json"
OFFLINE = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_specification_schema() -> None:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(_compose()), key=str)
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_every_variable_the_compose_file_reads_is_in_env_example() -> None:
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = (ROOT / "infra" / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.M))
    assert used - documented == set(), f"not in .env.example: {sorted(used - documented)}"
    assert not re.search(r"PASSWORD=\S|SECRET_ACCESS_KEY=\S|TOKEN=\S", example), "a secret has a value"


def test_services_start_after_healthy_dependencies_and_use_named_volumes() -> None:
    compose = _compose()
    services = compose["services"]
    one_shot = {name for name, s in services.items() if s.get("restart") == "no"}
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            assert rule["condition"] == wanted, f"{name} → {dependency}"
            assert dependency == "prefect-server" or "healthcheck" in services[dependency] or dependency in one_shot
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in compose["volumes"], f"{name}: {source} is not declared"
    long_running = set(services) - one_shot - {"prefect-services"}  # services has no HTTP port to probe
    assert {n for n in long_running if "healthcheck" not in services[n]} == set()


def test_workers_reach_prefect_and_mlflow_by_service_name_and_port() -> None:
    services = _compose()["services"]
    env = services["worker-cpu"]["environment"]
    prefect_cmd = services["prefect-server"]["command"]
    mlflow_cmd = services["mlflow"]["command"]
    assert env["PREFECT_API_URL"] == f"http://prefect-server:{prefect_cmd[prefect_cmd.index('--port') + 1]}/api"
    assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow:{mlflow_cmd[mlflow_cmd.index('--port') + 1]}"
    created = set(re.findall(r"CREATE DATABASE (\w+);", DATABASES_SQL.read_text()))
    prefect_db = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].rsplit("/", 1)[1]
    mlflow_db = services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].rsplit("/", 1)[1]
    assert {prefect_db, mlflow_db} == created == {"prefect", "mlflow"}
    assert services["mlflow"]["environment"]["MLFLOW_ARTIFACTS_DESTINATION"].startswith(
        "${MLFLOW_ARTIFACTS_DESTINATION:-s3://"
    )


def test_the_worker_reaches_shared_storage_through_settings_and_aws_variables_only() -> None:
    from swerl_core.config import load_settings

    env = _compose()["services"]["worker-cpu"]["environment"]
    assert env["SWERL_STORAGE__URI"] == "${SWERL_STORAGE__URI:-}"  # local only unless .env turns it on
    assert env["SWERL_STORAGE__ENDPOINT_URL"] == "${S3_ENDPOINT_URL:-http://minio:9000}"
    assert env["AWS_SECRET_ACCESS_KEY"].startswith("${S3_SECRET_ACCESS_KEY:?")
    storage = load_settings(
        env={"SWERL_STORAGE__URI": "s3://swerl/data", "SWERL_STORAGE__ENDPOINT_URL": "http://minio:9000"}
    ).storage
    assert (storage.uri, storage.endpoint_url) == ("s3://swerl/data", "http://minio:9000")


# --- a real PostgreSQL --------------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _run_as_postgres(*command: str) -> None:
    done = subprocess.run(_as_postgres(*command), capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{Path(command[0]).name} failed: {done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throw-away cluster (initdb in a temp dir, a free port) with the stack's databases; yields host:port."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are absent (Debian package postgresql; .ci/run installs it)")
    # Directly under /tmp: pytest's own temp root is private to root and the server refuses to run as root.
    base = Path(tempfile.mkdtemp(prefix="swerl-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    port = free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    try:
        _run_as_postgres(str(bin_dir / "initdb"), "-D", f"{base}/data", "-A", "trust", "-U", "swerl")
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
        _run_as_postgres(pg_ctl, "-D", f"{base}/data", "-o", options, "-l", f"{base}/log", "-w", "start")
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="swerl", dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            for statement in re.findall(r"^CREATE DATABASE \w+;", DATABASES_SQL.read_text(), flags=re.M):
                cursor.execute(statement)
        connection.close()
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres(pg_ctl, "-D", f"{base}/data", "-m", "fast", "stop"), capture_output=True, check=False
        )
        shutil.rmtree(base, ignore_errors=True)


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env={**os.environ, **OFFLINE, **env}, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)  # the whole group: servers fork workers
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 100) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url} server exited:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} not healthy after {timeout_s} s:\n{log.read_text()[-3000:]}")


def _json(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "swerl",
    "AWS_SECRET_ACCESS_KEY": "swerl-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    """An S3-compatible endpoint on a free port (moto's server; MinIO in the compose file) with the bucket made."""
    port = free_port()
    log = tmp_path / "s3.log"
    server = _start([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], {}, log)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(f"{url}/moto-api/", server, log, timeout_s=60)
        import boto3

        # The compose file's create-buckets step, against whatever endpoint S3_ENDPOINT_URL names.
        s3 = boto3.client("s3", endpoint_url=url, **{k.lower(): v for k, v in S3_KEYS.items() if "KEY" in k})
        s3.create_bucket(Bucket="swerl")
        yield url
    finally:
        _stop(server)


@pytest.mark.postgres
@pytest.mark.slow
def test_prefect_server_on_postgres_runs_a_flow_and_takes_the_gpu_work_pool(postgres: str, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "prefect.log"
    prefect = _start(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        {"PREFECT_HOME": str(tmp_path / "prefect-home"),
         "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://swerl@{postgres}/prefect"},  # as in compose
        log,
    )  # fmt: skip
    try:
        api = f"http://127.0.0.1:{port}/api"
        _wait_healthy(f"{api}/health", prefect, log)
        _run_client(_PREFECT_CLIENT, {"PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "client-home")}, tmp_path)
        _check_flow_run(api, postgres)
        # The swerl-gpu work pool's base job template is accepted by a real server as a kubernetes pool.
        body = {"name": "swerl-gpu", "type": "kubernetes", "base_job_template": json.loads(WORK_POOL.read_text())}
        pool = _json(f"{api}/work_pools/", body)
        assert pool["base_job_template"]["variables"]["properties"]["gpu_count"]["default"] == 8
    finally:
        _stop(prefect)


@pytest.mark.postgres
@pytest.mark.slow
def test_mlflow_server_on_postgres_and_s3_registers_a_model_version(
    postgres: str, s3_endpoint: str, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "mlflow.log"
    # As in compose (SQLAlchemy 2.1's default postgresql driver is psycopg 3, hence +psycopg2).
    mlflow = _start(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        {"MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg2://swerl@{postgres}/mlflow",
         "MLFLOW_ARTIFACTS_DESTINATION": "s3://swerl/mlflow", "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, **S3_KEYS,
         "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        log,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(f"{url}/health", mlflow, log)
        _run_client(_MLFLOW_CLIENT, {"MLFLOW_TRACKING_URI": url}, tmp_path)
        _check_model_version(url, postgres, s3_endpoint)
    finally:
        _stop(mlflow)


# --- the API / background-services split with Redis ------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[int]:
    """A real Redis server (Debian's redis-server; the compose file's redis image) on a free port; yields the port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is absent (Debian package redis-server; .ci/run installs it)")
    port, log = free_port(), tmp_path / "redis.log"
    server = _start([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", str(tmp_path)], {}, log)  # fmt: skip
    try:
        import redis

        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, f"redis-server exited:\n{log.read_text()[-2000:]}"
            try:
                if redis.Redis(port=port).ping():
                    break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, f"redis-server not answering:\n{log.read_text()[-2000:]}"
                time.sleep(0.2)
        yield port
    finally:
        _stop(server)


def _compose_prefect_env(postgres: str, redis_port: int) -> dict[str, str]:
    """The compose file's Prefect server environment, with its service hosts replaced by this machine's."""
    env = {key: str(value) for key, value in _compose()["x-prefect-server-env"].items()}
    assert env["PREFECT_MESSAGING_BROKER"] == env["PREFECT_MESSAGING_CACHE"] == "prefect_redis.messaging"
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"postgresql+asyncpg://swerl@{postgres}/prefect"
    env["PREFECT_REDIS_MESSAGING_HOST"], env["PREFECT_REDIS_MESSAGING_PORT"] = "127.0.0.1", str(redis_port)
    return env


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_api_and_background_services_split_over_redis_run_a_triggered_deployment(
    postgres: str, redis_server: int, tmp_path: Path
) -> None:
    """As compose runs it: `prefect server start --no-services` and `prefect server services start` as two
    processes sharing PostgreSQL, with events, the cache, causal ordering and leases in Redis. A `ping` run
    completes; its event crosses Redis to the services process, whose automation starts the `pong` deployment."""
    import redis

    services = _compose()["services"]
    prefect = str(Path(sys.executable).parent / "prefect")
    server_cmd, services_cmd = services["prefect-server"]["command"], services["prefect-services"]["command"]
    assert "--no-services" in server_cmd and services_cmd == ["prefect", "server", "services", "start"]
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**_compose_prefect_env(postgres, redis_server), "PREFECT_HOME": str(tmp_path / "server-home")}
    started: list[subprocess.Popen] = []
    try:
        started.append(_start([prefect, *server_cmd[1:server_cmd.index("--host")], "--host", "127.0.0.1",
                               "--port", str(port), "--no-services"], env, tmp_path / "api.log"))  # fmt: skip
        _wait_healthy(f"{api}/health", started[0], tmp_path / "api.log")
        started.append(_start([prefect, *services_cmd[1:]], env, tmp_path / "services.log"))
        runner_env = {"PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "runner-home"),
                      "PREFECT_RUNNER_POLL_FREQUENCY": "1"}  # fmt: skip
        script = tmp_path / "ping_pong.py"  # a file: Prefect refuses to deploy flows defined by `python -c`
        script.write_text(_PING_PONG)
        started.append(_start([sys.executable, str(script)], runner_env, tmp_path / "runner.log"))
        ping = _wait_for(lambda: _deployment(api, "ping/ping"), started, tmp_path, "the ping deployment")
        _json(f"{api}/deployments/{ping['id']}/create_flow_run", {})
        pong = _wait_for(lambda: _completed_run(api, "pong"), started, tmp_path, "a completed pong run")
        # The rows are in PostgreSQL (read while the processes run: stopping the runner can rewrite a finished
        # run's state). This module's earlier test completed its own probe run there: count ping and pong only.
        completed = _rows(
            postgres,
            "prefect",
            "SELECT count(*) FROM flow_run JOIN flow ON flow.id = flow_run.flow_id "
            "WHERE flow_run.state_type = 'COMPLETED' AND flow.name IN ('ping', 'pong')",
        )
    finally:
        for process in reversed(started):
            _stop(process)
    assert pong["parameters"] == {"upstream": "ping-run"}
    assert completed == 2
    keys = {key.decode() for key in redis.Redis(port=redis_server).keys("*")}
    assert "events" in keys, f"no event stream in Redis: {sorted(keys)}"
    services_log = (tmp_path / "services.log").read_text()
    assert "Traceback" not in services_log, services_log[-3000:]


def _deployment(api: str, name: str) -> dict | None:
    try:
        return _json(f"{api}/deployments/name/{name}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _completed_run(api: str, flow: str) -> dict | None:
    body = {"flows": {"name": {"any_": [flow]}}, "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    runs = _json(f"{api}/flow_runs/filter", body)
    return runs[0] if runs else None


def _wait_for(probe, processes: list[subprocess.Popen], logs: Path, what: str, timeout_s: float = 100):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"{process.args[:4]} exited before {what}:\n{_tails(logs)}"
        found = probe()
        if found is not None:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} after {timeout_s} s:\n{_tails(logs)}")


def _tails(logs: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text()[-1500:]}" for log in sorted(logs.glob("*.log")))


# Served from its own process: the runner polls the API for the runs of these two deployments.
_PING_PONG = """
from prefect import flow, serve
from prefect.events import DeploymentEventTrigger

@flow(name="ping", flow_run_name="ping-run")
def ping() -> str:
    return "ping"

@flow(name="pong")
def pong(upstream: str = "") -> str:
    return "pong after " + upstream

if __name__ == "__main__":  # each flow run imports this file again
    trigger = DeploymentEventTrigger(
        expect={"prefect.flow-run.Completed"},
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": "ping"},
        parameters={"upstream": "{{ event.resource.name }}"},
    )
    serve(ping.to_deployment(name="ping", concurrency_limit=1), pong.to_deployment(name="pong", triggers=[trigger]))
"""


def _run_client(script: str, env: dict[str, str], cwd: Path) -> None:
    # The client holds no S3 keys: artifacts travel through the tracking server.
    client_env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    subprocess.run(
        [sys.executable, "-c", script], env={**client_env, **OFFLINE, **env}, check=True, timeout=110, cwd=cwd
    )


def _check_flow_run(prefect_api: str, postgres: str) -> None:
    runs = _json(f"{prefect_api}/flow_runs/filter", {"flow_runs": {"name": {"any_": ["stack-probe-run"]}}})
    assert [r["state"]["type"] for r in runs] == ["COMPLETED"]
    # The rows are in PostgreSQL, not in some fallback store.
    assert _rows(postgres, "prefect", "SELECT count(*) FROM flow_run WHERE name = 'stack-probe-run'") == 1


def _check_model_version(mlflow_url: str, postgres: str, s3_endpoint: str) -> None:
    model = _json(f"{mlflow_url}/api/2.0/mlflow/registered-models/get?name=stack-probe")["registered_model"]
    assert [v["version"] for v in model["latest_versions"]] == ["1"]
    assert model["aliases"] == [{"alias": "champion", "version": "1"}]
    assert _rows(postgres, "mlflow", "SELECT count(*) FROM model_versions WHERE name = 'stack-probe'") == 1
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **{k.lower(): v for k, v in S3_KEYS.items() if "KEY" in k})
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket="swerl", Prefix="mlflow/")["Contents"]]
    assert [key for key in keys if key.endswith("/model/config.json")], f"artifact not in the bucket: {keys}"


def _rows(postgres: str, database: str, query: str) -> int:
    import psycopg2

    host, port = postgres.split(":")
    connection = psycopg2.connect(host=host, port=int(port), user="swerl", dbname=database)
    try:
        cursor = connection.cursor()
        cursor.execute(query)
        return int(cursor.fetchone()[0])
    finally:
        connection.close()


# Each runs in a fresh process against the server under test.
_PREFECT_CLIENT = """
from prefect import flow

@flow(name="stack-probe", flow_run_name="stack-probe-run")
def stack_probe() -> int:
    return 42

assert stack_probe() == 42
"""

_MLFLOW_CLIENT = """
import pathlib
import mlflow
from mlflow import MlflowClient

mlflow.set_experiment("stack-probe")
with mlflow.start_run() as run:
    mlflow.log_metric("reward", 0.5)
    pathlib.Path("model").mkdir()
    pathlib.Path("model", "config.json").write_text("{}")
    mlflow.log_artifacts("model", artifact_path="model")
client = MlflowClient()
client.create_registered_model("stack-probe")
version = client.create_model_version("stack-probe", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
client.set_registered_model_alias("stack-probe", "champion", version.version)
assert client.list_artifacts(run.info.run_id, "model")[0].path == "model/config.json"
"""
