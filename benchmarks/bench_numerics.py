"""What the portable numerics profile costs: the CI gate's training, native against pinned, in one run.

The gate's reproduce command (``.ci/gate``: the smoke table at the CI budget, seed 0) runs once per setting,
each with a fresh artifact cache so that every stage trains, in an alternating order over ``--repeats``:

- ``native, all threads``: what a user gets by default (every instruction set this CPU has, torch's threads);
- ``native, 1 thread``: the same thread count as the profile, so that the ISA's cost shows apart;
- ``portable``: ``--numerics portable`` (ATen, oneDNN and MKL pinned to AVX2, MKL's CNR, one thread).

It prints each setting's wall time (the median over repeats) and ``RATIO`` lines against ``native, 1 thread``
and against ``native, all threads``. Run it alone on the machine.

Usage: python benchmarks/bench_numerics.py [--repeats 1] [--train-subset 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETTINGS: dict[str, list[str]] = {
    "native, all threads": ["--numerics", "native"],
    "native, 1 thread": ["--numerics", "native", "--threads", "1"],
    "portable": ["--numerics", "portable", "--threads", "1"],
}


def reproduce(extra: list[str], train_subset: int, scratch: Path) -> float:
    """One ``bench reproduce smoke`` with a fresh cache; its wall time in seconds."""
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=scratch))
    out = Path(tempfile.mkdtemp(prefix="runs-", dir=scratch))
    command = [
        sys.executable,
        "-m",
        "harness",
        "reproduce",
        "smoke",
        "--train-subset",
        str(train_subset),
        "--seeds",
        "0",
        "--no-latency",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        sys.exit(f"bench_numerics: {' '.join(extra)} failed (exit {proc.returncode}): {tail}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=1, help="runs of each setting (alternating order)")
    p.add_argument("--train-subset", type=int, default=2000, help="training images (the gate's: 2000)")
    args = p.parse_args()
    if args.repeats < 1 or args.train_subset < 1:
        sys.exit("bench_numerics: --repeats and --train-subset must be >= 1")
    import torch

    print(
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores, torch {torch.__version__}"
    )
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="bench-numerics-") as tmp:
        for repeat in range(args.repeats):
            names = list(SETTINGS) if repeat % 2 == 0 else list(reversed(SETTINGS))
            for name in names:
                times[name].append(reproduce(SETTINGS[name], args.train_subset, Path(tmp)))
                print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"the smoke table at {args.train_subset} images, seed 0, every stage trained (median of {args.repeats}):")
    for name, seconds in median.items():
        print(f"  {name:<20} {seconds:7.1f} s")
    print(f"RATIO portable / native, 1 thread: {median['portable'] / median['native, 1 thread']:.2f}")
    print(f"RATIO portable / native, all threads: {median['portable'] / median['native, all threads']:.2f}")


if __name__ == "__main__":
    main()
