#!/usr/bin/env bash
# GPU smoke check for a lent H100/H200: a ViT-B/16-sized MetaPEFT fit in bf16, step time with
# meta off and on (see benchmarks/gpu_smoke.py). About 5 minutes including start-up.
# Usage: benchmarks/gpu_smoke.sh [--steps 120] [--workers 8]; PYTHON=... picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
exec timeout 540 "$PYTHON" benchmarks/gpu_smoke.py "$@"
