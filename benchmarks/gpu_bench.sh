#!/usr/bin/env bash
# GPU variant of the efficacy and speed benchmarks for a lent H100/H200 (ViT-B/16, 224 px, bf16),
# sized to finish within 8 minutes of device time (hard limit: timeout 480 s).
# Usage: benchmarks/gpu_bench.sh [--weights VIT_B16.pth] [--seeds 0]; PYTHON=... picks the
# interpreter. Results: benchmarks/results/{efficacy,speed}-gpu.json (and $OUT when set); then
# run `python benchmarks/render.py` where the results were copied back.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
exec timeout 480 "$PYTHON" benchmarks/gpu_bench.py "$@"
