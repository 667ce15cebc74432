#!/usr/bin/env bash
# Prepares, on this machine (with a package index), what a GPU machine lacks for benchmarks/gpu_check.py, in
# two ignored folders of the repository that the GPU run carries (benchmarks/README.md, "The GPU check"):
#   .whl/   the dependencies its python3 lacks (gpu_check.py --list-wheels), as wheels for Python 3.12 on
#           x86-64 Linux, and the project's own wheel (installed there with pip install --no-deps --no-index)
#   .data/  the JPEG CIFAR-10 of ../shared/data (part f; ../shared does not travel)
# then runs the dry run (gpu_check.py --check-install .whl), which trains nothing.
# Usage, in the repository root: bash benchmarks/gpu_prepare.sh   (PYTHON=... to use another interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=python3

rm -rf .whl
mkdir -p .whl .data
# pure-Python wheels need no platform; the platforms are named in case a carried dependency ever has one
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl $("$py" benchmarks/gpu_check.py --list-wheels)
# the project's wheel, built here (the GPU machine has no network to fetch a build backend)
"$py" -m pip wheel -q --no-deps --no-build-isolation -w .whl .
if [ ! -f .data/cifar10-jpg.tar.gz ] && [ -f ../shared/data/cifar10-jpg.tar.gz ]; then
    cp ../shared/data/cifar10-jpg.tar.gz .data/
fi
du -sh .whl .data
"$py" benchmarks/gpu_check.py --check-install .whl
