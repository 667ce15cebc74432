#!/usr/bin/env bash
# The full-training-set EncodeNet study (see PROTOCOL.md). Seed-major, so that an interrupted study has
# whole seeds; every stage is cached under $CACHE and reused when the script is run again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
read -ra bench <<< "${BENCH:-bench}"  # e.g. BENCH="python -m harness"
data="${DATA:-imagefolder:$root/../shared/data/cifar10-jpg.tar.gz}"
cache="${CACHE:-$HOME/.cache/encodenet-bench}"
epochs="${EPOCHS:-10}"
common=(--arch resnet8 --dataset "$data" --recipe crd --epochs "$epochs" --threads "${THREADS:-2}"
        --cache-dir "$cache" --out "$here/runs" --resume)
for seed in ${SEEDS:-0 1 2}; do
  "${bench[@]}" run --methods baseline,encodenet,baseline-matched --seeds "$seed" "${common[@]}"
  "${bench[@]}" run --methods encodenet --opt encodenet.split=classifier --seeds "$seed" "${common[@]}"
done
