#!/usr/bin/env bash
# Reproduces the CPU CIFAR-10 runs: width-0.25 VGG-11 and ResNet-18, each as QCFS
# reduced precision (4-bit weights, 8-bit first/last, L=4) and its FP32 twin.
# All four run at once, one thread each (num_threads = 1 in the configs): on a 2-core
# machine shared with other jobs that gets them the CPU share to finish in time, and
# one-thread runs are deterministic whatever the scheduling. Epoch counts in the configs
# were sized to that budget. Output: runs/cifar/<config>/{model.safetensors,config.json,
# metrics.json,checkpoint.pt}, logs in runs/cifar/<config>.log.
#   SIA_CIFAR10_DIR=/path/containing/cifar-10-batches-bin benchmarks/cifar_train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SIA_CIFAR10_DIR:?set SIA_CIFAR10_DIR to the CIFAR-10 binary data directory}"
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/cifar}
mkdir -p "$OUT"

for name in cifar10_vgg11_w025_qcfs cifar10_vgg11_w025_fp32 \
            cifar10_resnet18_w025_qcfs cifar10_resnet18_w025_fp32; do
  "$PY" -m sia.train "configs/$name.toml" --out "$OUT/$name" --no-progress > "$OUT/$name.log" 2>&1 &
done
wait
tail -n 1 "$OUT"/cifar10_*_w025_*.log
