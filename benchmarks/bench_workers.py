"""Sweep throughput: `bench run --workers 2` against `--workers 1` on the same stage jobs, in one run.

Both sides train the same stages (the baseline of resnet20 for 4 seeds, by default) into fresh artifact
stores, each with all of this machine's cores: ``--workers 1`` trains in one process with every thread,
``--workers 2`` in two worker processes with half the threads each. Prints the wall times and their ratio.
Run it alone on the machine: anything else running makes the ratio meaningless.

Usage: python benchmarks/bench_workers.py [--quick] [--arch resnet20] [--seeds 0,1,2,3] [--epochs 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep_seconds(workers: int, args: argparse.Namespace, datasets: Path, threads: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        (cache / "datasets").symlink_to(datasets, target_is_directory=True)
        cmd = [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--methods",
            "baseline",
            "--arch",
            args.arch,
            "--dataset",
            "cifar10-mini",
            "--recipe",
            "smoke",
            "--epochs",
            str(args.epochs),
            "--seeds",
            args.seeds,
            "--train-subset",
            str(args.images),
            "--device",
            "cpu",
            "--no-latency",
            "--quiet",
            "--cache-dir",
            str(cache),
            "--out",
            str(Path(tmp) / "runs"),
            "--workers",
            str(workers),
            "--threads",
            str(max(1, threads // workers)),
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--seeds", default="0,1,2,3")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--images", type=int, default=5000, help="training images (cifar10-mini has 5,000)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="cores for each side")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "encodenet-bench",
        help="where the decoded dataset is cached",
    )
    p.add_argument("--quick", action="store_true", help="a tiny setting that only checks the script runs")
    args = p.parse_args()
    if args.quick:
        args.arch, args.seeds, args.images = "resnet8", "0,1", 128
    datasets = args.cache_dir / "datasets"
    datasets.mkdir(parents=True, exist_ok=True)
    print(f"{args.arch}, seeds {args.seeds}, {args.epochs} epoch(s) of {args.images} images, {args.threads} cores")
    one = sweep_seconds(1, args, datasets, args.threads)
    two = sweep_seconds(2, args, datasets, args.threads)
    print(f"--workers 1: {one:.1f} s   --workers 2: {two:.1f} s")
    print(f"RATIO wall time --workers 1 / --workers 2: {one / two:.2f}")


if __name__ == "__main__":
    main()
