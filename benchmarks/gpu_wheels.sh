#!/usr/bin/env bash
# Prepares the wheels that benchmarks/gpu_smoke.sh installs on the GPU machine, on a machine that reaches the
# package index (run it from anywhere; any Python 3 with pip does: the wheels are chosen by tag, not by the
# interpreter that downloads them):
#
#   bash benchmarks/gpu_wheels.sh [WHEEL_DIR]        # default shared/wheels (git-ignored; travels with the tree)
#
# The GPU machine (shared/STACK.md, "The GPU machine") is Python 3.12.3 with torch 2.11.0+cu130, transformers 5.17,
# accelerate 1.15, peft, safetensors, tokenizers, pyarrow, pandas, numpy, requests, pyyaml and the rest of the list in
# GPU_PACKAGES below, and reaches nothing: whatever swerl's train path needs beyond that travels here, as cp312 /
# py3 wheels, inside the 64 MiB that the working tree may carry (this folder is about 25 MiB, the repository 2 MiB).
#
# The list is the closure of what the train path imports (trl, deepspeed, datasets, mlflow's client and its SQLite
# store, cydifflib, unidiff) over each wheel's Requires-Dist, minus what the GPU machine has. MLflow travels as
# mlflow-skinny, the same `mlflow` package without the server and UI (the full wheel and its server dependencies are
# far bigger): swerl's train path only uses MlflowClient on a sqlite:// URI, which needs SQLAlchemy and Alembic
# besides. Versions are the project's (pyproject.toml, and what `make install` resolves for the unpinned ones).
# DeepSpeed is an sdist only: it is built here into a pure-Python wheel (no ops compiled; none is needed by ZeRO-3
# with the trainer's torch AdamW, and DeepSpeed picks the CUDA accelerator at run time, not at build time).
#
# The check at the end fails when a wheel needs a distribution that is neither in the folder nor on the GPU machine.
set -euo pipefail

cd "$(dirname "$0")/.."
DEST="${1:-${WHEELS:-shared/wheels}}"
PYTHON="${PYTHON:-python3}"

WHEELS=(
    # what swerl's train path imports
    trl==1.16.0 datasets==5.2.0 mlflow-skinny==3.17.2 sqlalchemy==2.1.9 alembic==1.20.1
    cydifflib==1.2.0 unidiff==1.0.1
    # deepspeed's (besides torch, numpy, ninja, msgpack, psutil, py-cpuinfo, einops, nvidia-ml-py: on the machine)
    hjson==3.1.0 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
    # datasets'
    dill==0.4.1 multiprocess==0.70.19
    # mlflow-skinny's, and theirs
    cachetools==7.3.3 databricks-sdk==0.167.0 fastapi==0.136.3 starlette==1.10.0 uvicorn==0.55.0
    gitpython==3.2.1 gitdb==4.0.12 smmap==5.0.3 importlib-metadata==9.1.0 python-dotenv==1.2.4 sqlparse==0.6.1
    opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-proto==1.45.2
    opentelemetry-semantic-conventions==0.66b2
    google-auth==2.63.1 pyasn1==0.6.5 pyasn1-modules==0.4.2 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12
    # alembic's
    mako==1.4.3
)

# What the GPU machine's image holds (device notes, "Python packages already there", read 2026-11-17).
GPU_PACKAGES="absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers
flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py
markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind
narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc
nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham
simplejson six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore
threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics
torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig
werkzeug wheel wrapt xarray xxhash yarl zipp"

mkdir -p "$DEST"
"$PYTHON" -m pip download --quiet --dest "$DEST" --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    "${WHEELS[@]}"
# DeepSpeed ships no wheel: build its pure-Python one (about a minute; the build downloads setuptools only).
ls "$DEST"/deepspeed-0.19.8-*.whl >/dev/null 2>&1 \
    || "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$DEST" deepspeed==0.19.8

# Every requirement of every wheel (for Python 3.12 on Linux x86-64, no extras) is met by the folder or the machine.
GPU_PACKAGES="$GPU_PACKAGES" "$PYTHON" - "$DEST" <<'EOF'
import os, re, sys, zipfile
from pathlib import Path
try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename
except ImportError:  # a bare interpreter: pip's own copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename

env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "os_name": "posix",
       "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "extra": ""}
machine = {canonicalize_name(n) for n in os.environ["GPU_PACKAGES"].split()}
# The versions read there (a session's pip list); the others are checked by name only.
machine_versions = {"torch": "2.11.0", "transformers": "5.17.0", "accelerate": "1.15.0", "huggingface-hub": "1.33.0",
                    "numpy": "2.5.2", "tokenizers": "0.23.2", "safetensors": "0.8.0"}
wheels = sorted(Path(sys.argv[1]).glob("*.whl"))
here = {}
for w in wheels:
    name, version, _, tags = parse_wheel_filename(w.name)
    if not any(t.interpreter in ("py3", "py312", "cp312") or t.abi == "abi3" for t in tags):
        sys.exit(f"{w.name}: not a wheel for CPython 3.12")
    here[canonicalize_name(name)] = version
problems, total = [], 0
for w in wheels:
    total += w.stat().st_size
    with zipfile.ZipFile(w) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    for line in re.findall(r"^Requires-Dist: (.+)$", meta, re.M):
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name in here:
            if req.specifier and not req.specifier.contains(here[name], prereleases=True):
                problems.append(f"{w.name}: needs {req}, the folder has {here[name]}")
        elif name not in machine:
            problems.append(f"{w.name}: needs {req}, neither in the folder nor on the GPU machine")
        elif name in machine_versions and not req.specifier.contains(machine_versions[name], prereleases=True):
            problems.append(f"{w.name}: needs {req}, the GPU machine has {machine_versions[name]}")
for name in sorted(here.keys() & machine):
    problems.append(f"{name} is on the GPU machine already: carrying it would replace the machine's")
if problems:
    sys.exit("\n".join(sorted(set(problems))))
print(f"{len(wheels)} wheels, {total / 2**20:.1f} MiB in {sys.argv[1]}: "
      "every requirement met by the folder or the GPU machine")
EOF
