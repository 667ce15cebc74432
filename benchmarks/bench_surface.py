"""The times the docs state, measured: set-up, quickstart, the test suite, `bench --help`, `bench list`.

Run it alone on the machine (another process sharing the cores makes every figure meaningless). Each figure
is the wall time of the real command, as the README gives it:

- set-up: README command 1 from nothing (a new virtual environment, the pinned install, the quickstart run)
  in a fresh clone of this checkout (``--skip-setup`` leaves it out: it downloads nothing but installs ~6 GB);
- quickstart: the quickstart run alone, in the existing environment, with a fresh cache (so the bundled
  dataset is decoded and every stage trained, as a newcomer's first run does);
- tests: README command 2 (``python -m pytest -q``) in this checkout (``--skip-tests`` leaves it out);
- ``bench --help`` and ``bench list methods``: the median of 5 runs each, in the existing environment.

Usage: python benchmarks/bench_surface.py [--skip-setup] [--skip-tests]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = [
    "run",
    "--methods",
    "baseline,label-smoothing",
    "--arch",
    "resnet8",
    "--dataset",
    "cifar10-mini",
    "--recipe",
    "smoke",
    "--seeds",
    "0,1",
]


def timed(cmd: list[str] | str, **kwargs: object) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - t0


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-setup", action="store_true")
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    bench = [str(ROOT / ".venv" / "bin" / "bench")]
    scratch = Path(tempfile.mkdtemp(prefix="bench-surface-"))
    env = {**os.environ, "BENCH_CACHE_DIR": str(scratch / "cache")}
    try:
        for name, cmd in (("bench --help", [*bench, "--help"]), ("bench list methods", [*bench, "list", "methods"])):
            timed(cmd, env=env)  # warm the file cache
            print(f"{name:20s} {statistics.median(timed(cmd, env=env) for _ in range(5)):6.2f} s (median of 5)")
        quick = timed([*bench, *QUICKSTART, "--out", str(scratch / "runs")], env=env, cwd=scratch)
        print(f"{'quickstart':20s} {minutes(quick)} (fresh cache: decode + 4 trainings of 3 epochs x 5,000 images)")
        if not args.skip_tests:
            tests = timed(
                [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT
            )
            print(f"{'tests':20s} {minutes(tests)} (python -m pytest -q)")
        if not args.skip_setup:
            clone = scratch / "clone"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            command_1 = (ROOT / "README.md").read_text().split("```bash\n", 1)[1].splitlines()[0]
            setup = timed(["bash", "-c", command_1], cwd=clone, env={**env, "BENCH_CACHE_DIR": str(scratch / "c2")})
            print(f"{'set-up':20s} {minutes(setup)} (README command 1 in a fresh clone: venv, install, quickstart)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
