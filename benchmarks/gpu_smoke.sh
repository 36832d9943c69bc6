#!/usr/bin/env bash
# GPU smoke test of the train stage: a few ZeRO-3 GRPO steps on one GPU with a ~0.5 B-parameter
# Llama-architecture model built from a config (random init, no download), reporting tokens/s and
# step time. Budget: ≤ 8 minutes on one H100/H200.
#
# The GPU machine has torch and transformers but no network, so the other packages travel as wheels.
# Prepare them on a networked machine with the same Python (3.11, linux x86_64), from the repo root:
#
#   .venv/bin/pip download --dest shared/wheels --only-binary=:all: \
#       trl==1.16.0 accelerate==1.15.0 datasets==5.2.0 peft==0.21.2 mlflow==3.17.2 \
#       cydifflib==1.2.0 unidiff==1.0.1 pyyaml==6.0.3 hjson ninja py-cpuinfo pydantic msgpack
#   .venv/bin/pip wheel --no-deps --wheel-dir shared/wheels deepspeed==0.19.8   # sdist only on PyPI
#
# then run (the wheel folder can also be given as $WHEELS):
#   bash benchmarks/gpu_smoke.sh [WHEEL_DIR]
set -euo pipefail

cd "$(dirname "$0")/.."
WHEELS="${1:-${WHEELS:-shared/wheels}}"
STEPS="${SMOKE_STEPS:-5}"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d -t swerl-gpu-smoke-XXXX)"
export SWERL_HOME="$WORK/home" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
       MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no GPU visible'; print('gpu:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
missing="$("$PYTHON" - <<'EOF'
import importlib.util
need = ["trl", "deepspeed", "accelerate", "datasets", "mlflow", "cydifflib", "unidiff", "yaml"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)"
if [ -n "$missing" ]; then
    [ -d "$WHEELS" ] || { echo "missing packages ($missing) and no wheel folder $WHEELS" >&2; exit 2; }
    echo "installing from $WHEELS: $missing"
    "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" \
        trl==1.16.0 deepspeed==0.19.8 accelerate==1.15.0 datasets==5.2.0 mlflow==3.17.2 \
        cydifflib==1.2.0 unidiff==1.0.1 pyyaml
fi

"$PYTHON" - "$STEPS" <<'EOF'
import statistics, sys, time
from pathlib import Path

import torch
from mlflow import MlflowClient

from swerl_core.config import load_settings
from swerl_core.train.config import train_config_from_dict
from swerl_core.demo.sample_snapshot import SAMPLE_SNAPSHOT_ID, write_sample_snapshot
from swerl_core.demo.tiny_model import TinyModelSpec, init_tiny_model, parameter_count
from swerl_core.train import TrainRequest, run

steps = int(sys.argv[1])
settings = load_settings()
start = time.perf_counter()
# ~0.43 B parameters: Llama layout (GQA 20/4 heads, SwiGLU), the tiny in-process tokenizer.
spec = TinyModelSpec(hidden_size=1280, intermediate_size=3584, num_layers=24, num_heads=20, num_kv_heads=4)
model = init_tiny_model(settings.home / "models" / "smoke", spec)
write_sample_snapshot(settings.home)
print(f"model: {parameter_count(model) / 1e9:.2f} B parameters, built in {time.perf_counter() - start:.0f}s")
cfg = train_config_from_dict({
    "name": "gpu-smoke", "base_model": str(model), "snapshot": SAMPLE_SNAPSHOT_ID,
    "max_prompt_length": 1024, "max_completion_length": 256, "world_size": 1,
    "deepspeed": "infra/deepspeed/zero3.json", "bf16": True, "gradient_checkpointing": True,
    "grpo": {"prompts_per_step": 4, "num_generations": 8, "per_device_batch_size": 8, "max_steps": steps,
             "save_steps": steps, "learning_rate": 1e-6, "beta": 0.04, "loss_type": "grpo"},
})
result = run(settings, TrainRequest(cfg, stage="grpo", run_name="gpu-smoke"))
client = MlflowClient(settings.tracking_uri)

def values(name):
    return [m.value for m in sorted(client.get_metric_history(result.mlflow_run_id, name), key=lambda m: m.step)]

step_time, tokens, gen = values("step_time"), values("tokens_per_s"), values("generation_time_s")
later = slice(1, None) if len(step_time) > 1 else slice(None)  # step 1 includes warm-up
print(f"GRPO ZeRO-3: {result.steps} steps, 32 completions/step, {result.seconds:.0f}s in train()")
print(f"step time (s), steps 2+: median {statistics.median(step_time[later]):.2f}  all: "
      + " ".join(f"{v:.1f}" for v in step_time))
print(f"tokens/s (prompt+completion), steps 2+: median {statistics.median(tokens[later]):.0f}")
print(f"generation time (s), steps 2+: median {statistics.median(gen[later]):.2f}")
print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB; final model: {result.model_dir}")
assert (result.model_dir / "model.safetensors").is_file(), "ZeRO-3 did not save consolidated weights"
EOF
echo "gpu smoke passed (work dir $WORK)"
