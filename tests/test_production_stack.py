"""The production stack: infra/compose.yaml against the Compose specification, and its server settings on a real
PostgreSQL — a throw-away cluster, the Prefect server and the MLflow server on it, a flow run and a model version —
locked as compose locks them: the Prefect API behind its auth string, MLflow behind swerl-auth (basic-auth with the
promotion gate held by the server) with the service account, a release manager and a reader, checked over HTTP, through
swerl's own promote and CLI, and in Chromium.

The Compose schema is the one check-jsonschema vendors (compose-spec/compose-spec, Apache-2.0: its
builtin_schemas/vendor/licenses/LICENSE.compose-spec). No Docker daemon exists here, so the images are not
built and the compose file is not started; the servers run from this venv with the same environment keys.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import glob
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from swerl_core.train.distributed import free_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "infra" / "compose.yaml"
DATABASES_SQL = ROOT / "infra" / "postgres" / "databases.sql"
AUTH_INI = ROOT / "infra" / "mlflow" / "basic_auth.ini"
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
    assert not re.search(r"PASSWORD=\S|SECRET_ACCESS_KEY=\S|TOKEN=\S|AUTH_STRING=\S|SECRET_KEY=\S", example), (
        "a secret has a value"
    )


def test_every_login_the_stack_needs_is_required_and_no_file_holds_a_password() -> None:
    text = COMPOSE.read_text()
    for secret in ("PREFECT_AUTH_STRING", "MLFLOW_ADMIN_PASSWORD", "SWERL_SERVICE_PASSWORD", "MLFLOW_FLASK_SECRET_KEY"):
        uses = re.findall(r"\$\{" + secret + r"(:?[?-])?", text)
        assert uses and set(uses) == {":?"}, f"{secret} must stop `compose up` when unset (${{{secret}:?…}})"
    services = _compose()["services"]
    assert services["mlflow"]["command"][-2:] == ["--app-name", "swerl-auth"]
    assert "PREFECT_SERVER_API_AUTH_STRING" in _compose()["x-prefect-server-env"]
    worker = services["worker-cpu"]["environment"]
    assert worker["MLFLOW_TRACKING_USERNAME"] == "swerl" and "PREFECT_API_AUTH_STRING" in worker
    ini = configparser.ConfigParser()
    ini.read(AUTH_INI)
    assert "admin_password" not in ini["mlflow"], "the admin's password comes from MLFLOW_AUTH_ADMIN_PASSWORD"
    assert "@" not in ini["mlflow"]["database_uri"], "the auth database URI names a credential (libpq reads PG*)"


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
    auth_db = re.search(r"^database_uri = .*/(\w+)$", AUTH_INI.read_text(), flags=re.M)[1]
    assert {prefect_db, mlflow_db, auth_db} == created == {"prefect", "mlflow", "mlflow_auth"}
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


def _json(url: str, body: dict | None = None, auth: str | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **_basic(auth)}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _basic(auth: str | None) -> dict[str, str]:
    """The Authorization header of ``user:password`` (none for None)."""
    return {} if auth is None else {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def _status(url: str, body: dict | None = None, auth: str | None = None, method: str | None = None) -> int:
    """The HTTP status a request gets (the body is not read)."""
    try:
        _json_request(url, body, auth, method)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def _json_request(url: str, body: dict | None, auth: str | None, method: str | None) -> None:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **_basic(auth)}
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers, method=method), timeout=30):
        pass


S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "swerl",
    "AWS_SECRET_ACCESS_KEY": "swerl-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Fresh for every run, so that finding one anywhere it must not be is a leak, not a coincidence.
PREFECT_AUTH = "swerl-ops:" + secrets.token_urlsafe(18)
ACCOUNTS = {  # user → (role, password); the admin is MLflow's own
    "admin": ("admin", secrets.token_urlsafe(18)),
    "swerl": ("service", secrets.token_urlsafe(18)),
    "alice": ("release-manager", secrets.token_urlsafe(18)),
    "carol": ("reader", secrets.token_urlsafe(18)),
}
FLASK_KEY = secrets.token_urlsafe(24)
SECRETS = [PREFECT_AUTH, PREFECT_AUTH.split(":", 1)[1], FLASK_KEY, *(password for _, password in ACCOUNTS.values())]
MODEL = "swerl-policy"


def _login(user: str) -> str:
    return f"{user}:{ACCOUNTS[user][1]}"


@contextlib.contextmanager
def _signed_in(user: str | None, password: str | None = None) -> Iterator[None]:
    """MLflow's client (and swerl's CLI) read credentials only from these two variables: set them for a block."""
    saved = {key: os.environ.pop(key, None) for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    if user is not None:
        os.environ["MLFLOW_TRACKING_USERNAME"] = user
        os.environ["MLFLOW_TRACKING_PASSWORD"] = ACCOUNTS[user][1] if password is None else password
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None)
            if value is not None:
                os.environ[key] = value


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3-compatible endpoint on a free port (moto's server; MinIO in the compose file) with the bucket made."""
    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "s3.log"
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


_PEOPLE = ("release-manager", "reader")  # the accounts file's roles; the admin and the service account come from env


@dataclass(frozen=True)
class Server:
    """A server under test: its URL, its log and the directory its files live in."""

    url: str
    log: Path
    home: Path


@pytest.fixture(scope="module")
def locked_prefect(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The Prefect server on PostgreSQL, as compose runs it: every API call needs the auth string."""
    home = tmp_path_factory.mktemp("prefect")
    port, log = free_port(), home / "prefect.log"
    prefect = _start(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        {"PREFECT_HOME": str(home / "server-home"),
         "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://swerl@{postgres}/prefect",  # as in compose
         "PREFECT_SERVER_API_AUTH_STRING": PREFECT_AUTH, "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"},
        log,
    )  # fmt: skip
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/api/health", prefect, log)  # health answers without a login
        yield Server(f"http://127.0.0.1:{port}", log, home)
    finally:
        _stop(prefect)


@pytest.fixture(scope="module")
def locked_mlflow(postgres: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The MLflow server on PostgreSQL and S3 as compose runs it — swerl-auth, users in their own database — with
    the accounts provisioned by compose's one-shot step (python -m swerl_core.registry.accounts)."""
    home = tmp_path_factory.mktemp("mlflow")
    port, log = free_port(), home / "mlflow.log"
    service = _compose()["services"]["mlflow"]
    ini = home / "basic_auth.ini"  # the stack's file, its database host replaced by this machine's
    ini.write_text(AUTH_INI.read_text().replace("postgres:5432", postgres))
    env = {key: str(value) for key, value in service["environment"].items() if not str(value).startswith("${")}
    env.update({
        "MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg2://swerl@{postgres}/mlflow",
        "MLFLOW_ARTIFACTS_DESTINATION": "s3://swerl/mlflow", "MLFLOW_S3_ENDPOINT_URL": s3_endpoint, **S3_KEYS,
        "MLFLOW_AUTH_CONFIG_PATH": str(ini), "PGUSER": "swerl", "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": ACCOUNTS["admin"][1], "MLFLOW_FLASK_SERVER_SECRET_KEY": FLASK_KEY,
    })  # fmt: skip
    command = service["command"]
    mlflow = _start(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", *command[command.index("--app-name"):]],
        env, log,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(f"{url}/health", mlflow, log)
        accounts = home / "mlflow-accounts"  # compose hands the file over as a secret
        people = [f"{role} {user} {pw}\n" for user, (role, pw) in ACCOUNTS.items() if role in _PEOPLE]
        accounts.write_text("".join(people))
        accounts.chmod(0o600)
        step = _compose()["services"]["mlflow-accounts"]["command"]
        assert step[0] == "python"  # the image's; here this venv's
        provision = subprocess.run(
            [sys.executable, *step[1:]], cwd=home, capture_output=True, text=True, timeout=120,
            env={**os.environ, **OFFLINE, "MLFLOW_TRACKING_URI": url, "SWERL_HOME": str(home / "swerl-home"),
                 "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ACCOUNTS["admin"][1],
                 "SWERL_SERVICE_PASSWORD": ACCOUNTS["swerl"][1], "SWERL_ACCOUNTS_FILE": str(accounts)},
        )  # fmt: skip
        assert provision.returncode == 0, provision.stderr[-3000:]
        (home / "accounts.log").write_text(provision.stdout + provision.stderr)
        assert sorted(line.split(":")[0] for line in provision.stdout.splitlines()) == ["alice", "carol", "swerl"]
        yield Server(url, log, home)
    finally:
        _stop(mlflow)


@pytest.fixture(scope="module")
def probe_flow_run(locked_prefect: Server) -> str:
    """The flow run ``stack-probe-run``, run once by a client process against the locked server; its API URL."""
    api = locked_prefect.url + "/api"
    client_env = {"PREFECT_API_URL": api, "PREFECT_HOME": str(locked_prefect.home / "client-home"),
                  "PREFECT_API_AUTH_STRING": PREFECT_AUTH}  # fmt: skip
    _run_client(_PREFECT_CLIENT, client_env, locked_prefect.home)
    return api


@pytest.mark.postgres
@pytest.mark.slow
def test_prefect_server_on_postgres_runs_a_flow_and_takes_the_gpu_work_pool(probe_flow_run: str, postgres: str) -> None:
    api = probe_flow_run
    _check_flow_run(api, postgres)
    # The swerl-gpu work pool's base job template is accepted by a real server as a kubernetes pool.
    body = {"name": "swerl-gpu", "type": "kubernetes", "base_job_template": json.loads(WORK_POOL.read_text())}
    pool = _json(f"{api}/work_pools/", body, auth=PREFECT_AUTH)
    assert pool["base_job_template"]["variables"]["properties"]["gpu_count"]["default"] == 8


@pytest.mark.postgres
def test_prefect_api_refuses_calls_without_the_auth_string(locked_prefect: Server) -> None:
    api = locked_prefect.url + "/api"
    wrong = PREFECT_AUTH.split(":")[0] + ":not-the-password"
    assert [_status(f"{api}/flow_runs/filter", {}, auth) for auth in (None, wrong)] == [401, 401]
    assert _status(f"{api}/deployments/filter", {}, PREFECT_AUTH) == 200
    assert _status(f"{api}/health") == 200  # probes (compose's healthcheck, Kubernetes) need no login


@pytest.mark.postgres
@pytest.mark.slow
def test_mlflow_server_on_postgres_and_s3_registers_a_model_version(
    locked_mlflow: Server, postgres: str, s3_endpoint: str
) -> None:
    # The client signs in as the service account (as the workers do) and holds no S3 keys.
    signed_in = {"MLFLOW_TRACKING_URI": locked_mlflow.url, "MLFLOW_TRACKING_USERNAME": "swerl",
                 "MLFLOW_TRACKING_PASSWORD": ACCOUNTS["swerl"][1]}  # fmt: skip
    _run_client(_MLFLOW_CLIENT, signed_in, locked_mlflow.home)
    _check_model_version(locked_mlflow.url, postgres, s3_endpoint)


# --- who may promote: the gate held by the MLflow server -----------------------------------------------------------


@pytest.fixture(scope="module")
def gated_versions(locked_mlflow: Server) -> dict[str, str]:
    """Two versions of swerl-policy registered by the service account: one the gate passed, one it failed."""
    from mlflow import MlflowClient

    url = locked_mlflow.url
    with _signed_in("swerl"):
        client = MlflowClient(url, url)
        run = client.create_run(client.create_experiment("gated"))
        client.log_param(run.info.run_id, "recipe", "tiny")
        source = f"{run.info.artifact_uri}/model"
        versions = {
            verdict: client.create_model_version(MODEL, source, run.info.run_id, tags={"gate.verdict": verdict}).version
            for verdict in ("pass", "fail")
        }
    return {verdict: str(version) for verdict, version in versions.items()}


def _settings(server: Server):  # noqa: ANN202
    from swerl_core.config import load_settings

    return load_settings(env={"MLFLOW_TRACKING_URI": server.url, "SWERL_HOME": str(server.home / "swerl-home")})


def _alias_url(server: Server) -> str:
    return f"{server.url}/api/2.0/mlflow/registered-models/alias"


@pytest.mark.postgres
def test_anonymous_and_reader_cannot_move_champion_delete_versions_or_rewrite_gate_tags(
    locked_mlflow: Server, gated_versions: dict[str, str]
) -> None:
    move = {"name": MODEL, "alias": "champion", "version": gated_versions["fail"]}
    assert _status(_alias_url(locked_mlflow), move) == 401
    assert _status(_alias_url(locked_mlflow), move, _login("carol")) == 403
    api = f"{locked_mlflow.url}/api/2.0/mlflow/model-versions"
    version = {"name": MODEL, "version": gated_versions["fail"]}
    assert _status(f"{api}/delete", version, _login("carol"), "DELETE") == 403
    assert _status(f"{api}/set-tag", {**version, "key": "gate.verdict", "value": "pass"}, _login("carol")) == 403
    # Through swerl's CLI, credentials from the environment only: one line that says who lacks what.
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "swerl"), "promote", gated_versions["fail"], "--force", "--reason", "x"],
        capture_output=True, text=True, timeout=120, cwd=locked_mlflow.home,
        env={**os.environ, **OFFLINE, "MLFLOW_TRACKING_URI": locked_mlflow.url, "MLFLOW_TRACKING_USERNAME": "carol",
             "MLFLOW_TRACKING_PASSWORD": ACCOUNTS["carol"][1], "SWERL_HOME": str(locked_mlflow.home / "swerl-home")},
    )  # fmt: skip
    assert (cli.returncode, cli.stderr.strip()) == (1, f"swerl promote: not allowed: carol lacks MANAGE on {MODEL}")


@pytest.mark.postgres
def test_wrong_or_missing_credentials_are_refused_as_such_not_as_an_unreachable_registry(
    locked_mlflow: Server, gated_versions: dict[str, str]
) -> None:
    from swerl_core.errors import AccessDenied
    from swerl_core.registry.register import list_versions

    settings = _settings(locked_mlflow)
    with _signed_in(None), pytest.raises(AccessDenied, match="needs a login: set MLFLOW_TRACKING_USERNAME"):
        list_versions(settings)
    with _signed_in("alice", "wrong"), pytest.raises(AccessDenied, match="refused the password of alice"):
        list_versions(settings)
    with _signed_in("carol"):  # a reader reads
        assert {row.version for row in list_versions(settings)} >= set(gated_versions.values())


@pytest.mark.postgres
def test_service_account_moves_champion_only_to_a_version_that_passed_the_gate(
    locked_mlflow: Server, gated_versions: dict[str, str]
) -> None:
    from swerl_core.errors import AccessDenied
    from swerl_core.models import alias_version, mlflow_client
    from swerl_core.registry.register import promote_version

    settings = _settings(locked_mlflow)
    with _signed_in("swerl"):
        with pytest.raises(AccessDenied, match=r"swerl moves champion only to a version that passed the gate"):
            promote_version(settings, gated_versions["fail"], "swerl", "forced by the workers", force=True)
        move = promote_version(settings, gated_versions["pass"], "swerl", "passed the gate")
        assert alias_version(mlflow_client(locked_mlflow.url), MODEL, "champion") == gated_versions["pass"]
    assert (move.who, move.forced) == ("swerl", False)


@pytest.mark.postgres
def test_release_manager_forces_a_promotion_recorded_with_their_name_and_reason(
    locked_mlflow: Server, gated_versions: dict[str, str]
) -> None:
    from swerl_core.models import alias_version, mlflow_client
    from swerl_core.registry.aliases import alias_moves
    from swerl_core.registry.register import current_user, promote_version

    failed = gated_versions["fail"]
    move = {"name": MODEL, "alias": "champion", "version": failed}
    assert _status(_alias_url(locked_mlflow), move, _login("alice")) == 403  # no recorded reason: refused
    tag = {"name": MODEL, "version": failed, "key": "gate.verdict", "value": "pass"}
    assert _status(f"{locked_mlflow.url}/api/2.0/mlflow/model-versions/set-tag", tag, _login("alice")) == 403
    forged = {"alias": "champion", "version": failed, "previous": None, "kind": "promote", "who": "bob", "why": "x",
              "when": "2026-01-01T00:00:00+00:00", "forced": True, "state": "intended"}  # fmt: skip
    record = {"name": MODEL, "key": "alias_move.0.forged", "value": json.dumps(forged)}
    assert _status(f"{locked_mlflow.url}/api/2.0/mlflow/registered-models/set-tag", record, _login("alice")) == 403
    with _signed_in("alice"):
        done = promote_version(_settings(locked_mlflow), failed, current_user(), "v1 regressed on repo X", force=True)
        client = mlflow_client(locked_mlflow.url)
        assert alias_version(client, MODEL, "champion") == failed
        last = alias_moves(client, MODEL)[-1]
    assert (done.forced, last.who, last.why, last.forced, last.version) == (
        True, "alice", "v1 regressed on repo X", True, failed
    )  # fmt: skip


@pytest.mark.postgres
def test_only_the_admin_renames_or_deletes_the_model_or_marks_it_a_prompt(locked_mlflow: Server) -> None:
    # Deleting the model drops its permissions: a reader could then create it again and manage it.
    api = f"{locked_mlflow.url}/api/2.0/mlflow/registered-models"
    alice = _login("alice")  # a release manager: MANAGE on the model
    assert _status(f"{api}/rename", {"name": MODEL, "new_name": "elsewhere"}, alice) == 403
    assert _status(f"{api}/delete", {"name": MODEL}, alice, "DELETE") == 403
    assert _status(f"{api}/set-tag", {"name": MODEL, "key": "mlflow.prompt.is_prompt", "value": "true"}, alice) == 403
    assert _status(f"{api}/get?name={MODEL}", None, alice, "GET") == 200  # still there, under its name


def _move_record(version: str, **fields: object) -> str:
    """An alias-move record as swerl writes it (aliases.AliasMove): alice forcing ``champion`` to ``version``."""
    record = {"alias": "champion", "version": version, "previous": None, "kind": "promote", "who": "alice",
              "why": "hotfix", "when": "2026-01-01T00:00:00+00:00", "forced": True, "state": "intended"}  # fmt: skip
    return json.dumps({**record, **fields})


@pytest.mark.postgres
def test_a_forced_move_keeps_its_record_until_done_and_rollback_stands_in_only_for_a_real_rollback(
    locked_mlflow: Server, gated_versions: dict[str, str]
) -> None:
    from swerl_core.models import alias_version, mlflow_client
    from swerl_core.registry.aliases import alias_moves
    from swerl_core.registry.register import promote_version, rollback_champion

    passed, failed, alice = gated_versions["pass"], gated_versions["fail"], _login("alice")
    url, api = locked_mlflow.url, f"{locked_mlflow.url}/api/2.0/mlflow"
    with _signed_in("alice"):
        promote_version(_settings(locked_mlflow), passed, "alice", "a passing champion first")
    # Record a forced move, make it, then try to wipe the trace: remove the record, move or drop the alias away
    # first, delete the version, or call the record's move never made.
    key = f"alias_move.{time.time_ns():020d}.door"
    record = {"name": MODEL, "key": key, "value": _move_record(failed)}
    assert _status(f"{api}/registered-models/set-tag", record, alice) == 200
    assert _status(_alias_url(locked_mlflow), {"name": MODEL, "alias": "champion", "version": failed}, alice) == 200
    assert _status(f"{api}/registered-models/delete-tag", {"name": MODEL, "key": key}, alice, "DELETE") == 403
    assert _status(_alias_url(locked_mlflow), {"name": MODEL, "alias": "champion", "version": passed}, alice) == 403
    assert _status(_alias_url(locked_mlflow), {"name": MODEL, "alias": "champion"}, alice, "DELETE") == 403
    assert _status(f"{api}/model-versions/delete", {"name": MODEL, "version": failed}, alice, "DELETE") == 403
    done = {**record, "value": _move_record(failed, state="done")}
    assert _status(f"{api}/registered-models/set-tag", done, alice) == 200  # settled: the record stays
    # A record marked done whose move never happened would forge the lineage rollback replays.
    forged = {"name": MODEL, "key": key + "x", "value": _move_record(passed, forced=False)}
    assert _status(f"{api}/registered-models/set-tag", forged, alice) == 200
    assert _status(f"{api}/registered-models/set-tag", {**forged, "value": _move_record(passed, forced=False,
                   state="done")}, alice) == 403  # fmt: skip
    assert _status(f"{api}/registered-models/delete-tag", {"name": MODEL, "key": key + "x"}, alice, "DELETE") == 200
    # A 'rollback' record is no forced one unless it returns champion to the holder before the current one (the log).
    move = {"name": MODEL, "alias": "champion", "version": passed}
    assert _status(_alias_url(locked_mlflow), move, alice) == 200  # champion off the failed version, unrecorded
    for alias in ("challenger", "champion"):
        fake = {"name": MODEL, "key": key + alias, "value": _move_record(failed, alias=alias, kind="rollback",
                forced=False)}  # fmt: skip
        assert _status(f"{api}/registered-models/set-tag", fake, alice) == 200
        assert _status(_alias_url(locked_mlflow), {**move, "alias": alias, "version": failed}, alice) == 403, alias
        assert _status(f"{api}/registered-models/delete-tag", {"name": MODEL, "key": key + alias}, alice,
                       "DELETE") == 200  # fmt: skip
    # swerl's own rollback returns champion to the force-promoted holder before it: a real rollback.
    with _signed_in("alice"):
        promote_version(_settings(locked_mlflow), failed, "alice", "again", force=True)
        promote_version(_settings(locked_mlflow), passed, "alice", "and back")
        assert rollback_champion(_settings(locked_mlflow), "alice", "the pass regressed").version == failed
        client = mlflow_client(url)
        assert alias_version(client, MODEL, "champion") == failed
        assert alias_moves(client, MODEL)[-1].kind == "rollback"


@pytest.mark.postgres
def test_running_the_accounts_step_again_rotates_a_password_and_changes_a_role(locked_mlflow: Server) -> None:
    from mlflow.server import get_app_client

    home, step = locked_mlflow.home, _compose()["services"]["mlflow-accounts"]["command"]
    for role, password in (("reader", secrets.token_urlsafe(18)), ("release-manager", secrets.token_urlsafe(18))):
        accounts = home / "mlflow-accounts-again"
        accounts.write_text(f"release-manager alice {ACCOUNTS['alice'][1]}\n{role} dave {password}\n")
        again = subprocess.run(
            [sys.executable, *step[1:]], cwd=home, capture_output=True, text=True, timeout=120,
            env={**os.environ, **OFFLINE, "MLFLOW_TRACKING_URI": locked_mlflow.url, "SWERL_HOME": str(home / "again"),
                 "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ACCOUNTS["admin"][1],
                 "SWERL_SERVICE_PASSWORD": ACCOUNTS["swerl"][1], "SWERL_ACCOUNTS_FILE": str(accounts)},
        )  # fmt: skip
        assert again.returncode == 0, again.stderr[-2000:]
        assert password not in again.stdout + again.stderr
        read = f"{locked_mlflow.url}/api/2.0/mlflow/registered-models/get?name={MODEL}"
        assert _status(read, None, f"dave:{password}") == 200
    with _signed_in("admin"):
        users = get_app_client("basic-auth", tracking_uri=locked_mlflow.url)
        assert users.get_user_permission("dave", "registered_model", MODEL).permission == "MANAGE"


@pytest.mark.postgres
@pytest.mark.slow
def test_both_uis_render_in_chromium_after_login(
    locked_mlflow: Server, locked_prefect: Server, gated_versions: dict[str, str], probe_flow_run: str
) -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is absent (apt-get install chromium; .ci/run installs it)")
    user, password = _login("carol").split(":", 1)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            assert browser.new_page().request.get(locked_mlflow.url).status == 401  # no login: no UI
            page = browser.new_context(http_credentials={"username": user, "password": password}).new_page()
            page.goto(f"{locked_mlflow.url}/#/models/{MODEL}")
            page.get_by_text(f"Version {gated_versions['fail']}", exact=True).first.wait_for(timeout=60_000)
            prefect = browser.new_page()
            prefect.goto(f"{locked_prefect.url}/runs")
            prefect.get_by_placeholder("admin:pass").fill(PREFECT_AUTH)  # the UI's login form
            prefect.get_by_role("button", name="Login").click()  # back to /runs, its API calls now signed
            prefect.get_by_text("stack-probe-run").first.wait_for(timeout=60_000)
        finally:
            browser.close()


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.postgres
@pytest.mark.slow
def test_no_credential_reaches_logs_params_tags_artifacts_flow_runs_or_ps(
    locked_mlflow: Server, locked_prefect: Server, gated_versions: dict[str, str], probe_flow_run: str
) -> None:
    import psutil
    from mlflow import MlflowClient

    seen: dict[str, str] = {}
    for process in psutil.process_iter(["cmdline"]):
        seen[f"ps {process.pid}"] = " ".join(process.info["cmdline"] or [])
    for server in (locked_mlflow, locked_prefect):
        for log in server.home.glob("*.log"):
            seen[str(log)] = log.read_text(errors="replace")
    with _signed_in("admin"):
        client = MlflowClient(locked_mlflow.url, locked_mlflow.url)
        for run in client.search_runs([e.experiment_id for e in client.search_experiments()]):
            seen[f"run {run.info.run_id}"] = json.dumps([run.data.params, run.data.tags])
            artifacts = client.download_artifacts(run.info.run_id, "", str(locked_mlflow.home / run.info.run_id))
            for path in Path(artifacts).rglob("*"):
                seen[str(path)] = path.read_text(errors="replace") if path.is_file() else ""
        model = client.get_registered_model(MODEL)
        seen["model tags"] = json.dumps(model.tags)
        for version in client.search_model_versions(f"name = '{MODEL}'"):
            seen[f"version {version.version}"] = json.dumps(version.tags)
    api = locked_prefect.url + "/api"
    for what in ("flow_runs", "logs", "artifacts", "deployments"):
        seen[f"prefect {what}"] = json.dumps(_json(f"{api}/{what}/filter", {}, auth=PREFECT_AUTH))
    looked_at = "\n".join(seen.values())
    assert "swerl-auth" in looked_at and "stack-probe-run" in looked_at and "alias_move." in looked_at
    leaks = [(where, secret[:4] + "…") for where, text in seen.items() for secret in SECRETS if secret in text]
    assert leaks == [], f"credentials found in: {leaks}"


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
    assert env["PREFECT_SERVER_API_AUTH_STRING"].startswith("${PREFECT_AUTH_STRING:?")
    env["PREFECT_SERVER_API_AUTH_STRING"] = PREFECT_AUTH
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
                      "PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT_API_AUTH_STRING": PREFECT_AUTH}  # fmt: skip
        script = tmp_path / "ping_pong.py"  # a file: Prefect refuses to deploy flows defined by `python -c`
        script.write_text(_PING_PONG)
        started.append(_start([sys.executable, str(script)], runner_env, tmp_path / "runner.log"))
        ping = _wait_for(lambda: _deployment(api, "ping/ping"), started, tmp_path, "the ping deployment")
        _json(f"{api}/deployments/{ping['id']}/create_flow_run", {}, auth=PREFECT_AUTH)
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
        return _json(f"{api}/deployments/name/{name}", auth=PREFECT_AUTH)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _completed_run(api: str, flow: str) -> dict | None:
    body = {"flows": {"name": {"any_": [flow]}}, "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    runs = _json(f"{api}/flow_runs/filter", body, auth=PREFECT_AUTH)
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
    body = {"flow_runs": {"name": {"any_": ["stack-probe-run"]}}}
    runs = _json(f"{prefect_api}/flow_runs/filter", body, auth=PREFECT_AUTH)
    assert [r["state"]["type"] for r in runs] == ["COMPLETED"]
    # The rows are in PostgreSQL, not in some fallback store.
    assert _rows(postgres, "prefect", "SELECT count(*) FROM flow_run WHERE name = 'stack-probe-run'") == 1


def _check_model_version(mlflow_url: str, postgres: str, s3_endpoint: str) -> None:
    model = _json(f"{mlflow_url}/api/2.0/mlflow/registered-models/get?name=stack-probe", auth=_login("carol"))
    model = model["registered_model"]
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
# The service account writes the gate's verdict; only a passing version may become champion (swerl-auth).
version = client.create_model_version(
    "stack-probe", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags={"gate.verdict": "pass"}
)
client.set_registered_model_alias("stack-probe", "champion", version.version)
assert client.list_artifacts(run.info.run_id, "model")[0].path == "model/config.json"
"""
