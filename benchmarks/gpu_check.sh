#!/usr/bin/env bash
# The GPU path in one script: on a machine with an NVIDIA GPU, installs JAX's CUDA
# plugin into .venv, then runs the base benchmark and a short study there and prints
# FLOPs (XLA's count, which cuBLAS/cuDNN custom calls can leave out, next to the
# jaxpr count) and latency. Everything it writes lands under ${OUT:-runs/gpu}.
#
#   bash benchmarks/gpu_check.sh                 # JAX_CUDA=cuda12 by default
#   JAX_CUDA=cuda13 OUT=/tmp/gpu bash benchmarks/gpu_check.sh
#   ALLOW_CPU=1 bash benchmarks/gpu_check.sh    # the same checks on the CPU (dry run)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
JAX_CUDA=${JAX_CUDA:-cuda12}
make venv >/dev/null
PY=.venv/bin/python
if ! command -v nvidia-smi >/dev/null; then
  if [ "${ALLOW_CPU:-0}" != 1 ]; then
    echo "no NVIDIA GPU here (nvidia-smi not found); ALLOW_CPU=1 runs the same checks on the CPU" >&2
    exit 1
  fi
elif ! $PY -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' 2>/dev/null; then
  version=$($PY -c 'import jax; print(jax.__version__)')
  $PY -m pip install -q "jax[$JAX_CUDA]==$version"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
$PY -c 'import jax; print("backend:", jax.default_backend(), jax.devices())'
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
$PY train.py --config=configs/base.py --workdir="$OUT/base" 2>&1 | grep -v '^I[0-9]' | tail -3
$PY benchmark.py --workdir="$OUT/base" 2>&1 | grep -v '^I[0-9]'
$PY benchmark.py --config=configs/studies/quick.py --workdir="$OUT/quick" 2>&1 | grep -v '^I[0-9]' | tail -12
$PY - "$OUT/quick" <<'PY'
import sys
import pandas as pd
table = pd.read_csv(f'{sys.argv[1]}/results.csv')
columns = ['study', 'method', 'resolution', 'width', 'accuracy', 'flops_xla', 'flops_jaxpr',
           'flops_ratio', 'flops_xla_note', 'latency_median_s', 'latency_iqr_s', 'throughput_per_s',
           'hardware_id']
pd.set_option('display.width', 250)
pd.set_option('display.max_colwidth', 60)
print(table[columns].to_string(index=False))
PY
echo "report: $OUT/quick/report/report.md"
