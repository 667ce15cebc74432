#!/usr/bin/env bash
# Issue 13 study (see PROTOCOL.md): MSDNet (anytime), ResMLP, WaveCNet, low-rank filters, DCFF and filter-level
# fine-tuning beside the
# baseline ResNets, at the CPU budget of the EncodeNet study, on the JPEG copy of CIFAR-10. One command:
#   results/published/related-systems-cifar10jpg/run.sh        (BENCH="python -m harness", SEEDS, EPOCHS, ...)
# Seed-major and resumable: every stage is cached under $CACHE and reused when the script is run again.
# Needs an idle machine for its wall times and latencies. Seed 0 was partly run (PROTOCOL.md says what).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
read -ra bench <<< "${BENCH:-bench}"
data="${DATA:-imagefolder:$root/../shared/data/cifar10-jpg.tar.gz}"
cache="${CACHE:-$HOME/.cache/encodenet-bench}"
common=(--dataset "$data" --recipe crd --epochs "${EPOCHS:-8}" --train-subset 4000 --test-subset 4000
        --val-split 0.1 --threads "${THREADS:-2}" --cache-dir "$cache" --out "$here/runs" --resume
        --eval-noise 0.05,0.1,0.2 --eval-distort blur:1)  # top-1 under distortion, for every method
for seed in ${SEEDS:-0 1 2}; do
  for arch in resnet8 resnet20; do
    "${bench[@]}" run --methods baseline,wavecnet,lowrank,dcff --opt dcff.keep=0.5 --arch "$arch" --seeds "$seed" \
      "${common[@]}"
  done
  "${bench[@]}" run --methods lowrank --opt lowrank.variant=basis --arch resnet8 --seeds "$seed" "${common[@]}"
  "${bench[@]}" run --methods wavecnet --opt wavecnet.wavelet=db2 --arch resnet8 --seeds "$seed" "${common[@]}"
  "${bench[@]}" run --methods baseline --arch resmlp:depth=12,dim=128 --seeds "$seed" "${common[@]}"
  "${bench[@]}" run --methods anytime --arch msdnet --seeds "$seed" "${common[@]}"
  # part B: DCFF on the CIFAR VGG it was published with; filter-level fine-tuning against whole layers
  "${bench[@]}" run --methods baseline,dcff --opt dcff.keep=0.5 --arch vgg8 --seeds "$seed" "${common[@]}"
  "${bench[@]}" run --methods filter-ft --arch resnet8 --seeds "$seed" "${common[@]}"
  "${bench[@]}" run --methods filter-ft --opt filter-ft.select=layers --arch resnet8 --seeds "$seed" "${common[@]}"
done
"${bench[@]}" table "$here/runs" --export "$here/table"
"${bench[@]}" plot "$here/runs" --out "$here/plots" --no-curves
