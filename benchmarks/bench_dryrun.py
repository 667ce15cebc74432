"""The dry run before and after its plans were resolved once (issue 32): the same commands, in one run.

"Before" is the code of a base revision (default ``fc1bd43``, the commit before the change), exported with
``git archive`` into a temporary folder and run from there with this checkout's virtual environment (its
folder first on ``PYTHONPATH``, so ``harness`` and the built-in plugins are the base revision's); "after"
is this checkout. Both use one scratch cache, decoded by a warm-up run of each side, so neither side pays
for decoding the bundled dataset. Each figure is the median wall time of ``--repeats`` runs, the sides
alternating; the totals each side prints (image-epochs) must agree, or the benchmark stops.

The commands (``--dry-run`` added to each):

- ``headline``: docs/commands.md's dry run, ``bench run --methods encodenet,kd,cbam --arch resnet50`` (CIFAR-10,
  recipe crd: 80,000,000 image-epochs), with ``--no-download`` so that neither side downloads CIFAR-10 (a
  dry run plans it on its declared size either way);
- ``readme``: the README's first comparison (ResNet-50 on 500 bundled images, one epoch);
- ``small``: a CPU user's plan (ResNet-8, baseline, KD and FitNet with a ResNet-20 teacher, on the bundled
  images), whose dry run imports no timm, torchvision, scipy, sklearn or matplotlib since issue 32's item 2;
- ``paper``: the headline at the paper's budget (CIFAR-100, seeds 0-2; not run unless named with ``--only``).

Each command also gets its **import floor**, measured in the same run: the modules that "after"'s dry run
imported, except the harness's and the built-in plugins' own (torch, ``torch._dynamo``, which torch's flop
counter and torchvision both import, sympy, timm, torchvision, rich, ...), imported by a process that does
nothing else. No change to the harness can make a dry run faster than that; "own" is the rest (the dry run
minus the floor: planning, building and costing the networks, printing), before and after.

Run it alone on the machine: another process sharing the cores makes the figures meaningless (the ratio
less so).

Usage: python benchmarks/bench_dryrun.py [--base REV] [--repeats 3] [--only headline|readme|small|paper]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ["--methods", "encodenet,kd,cbam", "--arch", "resnet50", "--no-download"]
COMMANDS = {
    "headline": HEADLINE,
    "readme": [
        "--methods",
        "encodenet,kd,cbam",
        "--arch",
        "resnet50",
        "--dataset",
        "cifar10-mini",
        "--recipe",
        "smoke",
        "--epochs",
        "1",
        "--train-subset",
        "500",
        "--test-subset",
        "200",
    ],
    "small": [
        "--methods",
        "baseline,kd,fitnet",
        "--arch",
        "resnet8",
        "--teacher",
        "resnet20",
        "--dataset",
        "cifar10-mini",
    ],
    "paper": [*HEADLINE, "--dataset", "cifar100", "--seeds", "0,1,2"],
}
DEFAULT = ("headline", "readme", "small")
NOTED = {"torch", "sympy", "timm", "torchvision", "numpy", "rich", "scipy", "sklearn", "matplotlib"}
TOTAL = re.compile(r"([\d,]+) image-epochs of training")


def export(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (committed files only) in ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def bench_args(args: list[str], scratch: Path) -> list[str]:
    """``bench``'s arguments for the dry run of ``args``, with the scratch cache and output folders."""
    return ["run", *args, "--dry-run", "--cache-dir", str(scratch / "cache"), "--out", str(scratch / "runs")]


def dry_run(tree: Path, args: list[str], scratch: Path) -> tuple[float, str]:
    """(wall seconds, the image-epochs total it printed) of ``bench run ARGS --dry-run`` with ``tree``'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "harness", *bench_args(args, scratch)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} (in {tree}) failed:\n{done.stderr}")
    found = TOTAL.search(" ".join(done.stdout.split()))
    return seconds, found.group(1) if found else "?"


def dry_run_imports(args: list[str], scratch: Path) -> list[str]:
    """The modules this checkout's dry run of ``args`` imports, but for the harness's and the plugins' own."""
    listing = scratch / "modules.json"
    argv = ["bench", *bench_args(args, scratch)]
    program = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: json.dump(sorted(sys.modules), open({str(listing)!r}, 'w')))\n"
        f"sys.argv = {argv!r}\n"
        "from harness.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, check=True)
    own = ("harness", "plugins", "__main__", "__mp_main__")
    return [m for m in json.loads(listing.read_text()) if m.split(".")[0] not in own]


def import_floor(modules: list[str]) -> float:
    """Wall seconds of a process that imports ``modules`` (in order; one that fails to import is skipped, as
    some are aliases that exist only once their parent has run) and does nothing else."""
    program = (
        "import importlib, sys\n"
        "for name in sys.stdin.read().split():\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", program], input="\n".join(modules), text=True, check=True, cwd=ROOT)
    return time.perf_counter() - t0


def compare(name: str, args: list[str], before: Path, scratch: Path, repeats: int) -> None:
    """Print both sides' median wall times of ``args``' dry run, and their ratio."""
    times: dict[str, list[float]] = {"before": [], "after": [], "floor": []}
    totals: dict[str, set[str]] = {"before": set(), "after": set()}
    for tree in (before, ROOT):
        dry_run(tree, args, scratch)  # warm-up: decodes the dataset once, fills the file cache
    modules = dry_run_imports(args, scratch)
    for _ in range(repeats):
        for side, tree in (("before", before), ("after", ROOT)):
            seconds, total = dry_run(tree, args, scratch)
            times[side].append(seconds)
            totals[side].add(total)
        times["floor"].append(import_floor(modules))
    if totals["before"] != totals["after"]:
        raise SystemExit(f"{name}: the two sides plan different work: {totals}")
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"{name}: bench run {' '.join(args)} --dry-run ({totals['after'].pop()} image-epochs)")
    print(
        f"  before {b:6.2f} s   after {a:6.2f} s   (median of {repeats}; before: "
        f"{', '.join(f'{t:.1f}' for t in times['before'])}"
        f"; after: {', '.join(f'{t:.1f}' for t in times['after'])})"
    )
    print(f"RATIO {name} dry run before/after: {b / a:.1f}x")
    floor = statistics.median(times["floor"])
    print(
        f"  import floor {floor:5.2f} s ({len(modules)} modules that are not the harness's or its plugins': "
        f"{', '.join(sorted({m.split('.')[0] for m in modules} & NOTED))}, ...); own work before "
        f"{b - floor:5.2f} s, after {a - floor:5.2f} s"
    )
    print(f"RATIO {name} own work (dry run minus import floor) before/after: {(b - floor) / max(a - floor, 1e-9):.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default="fc1bd43", help="the revision whose code is 'before'")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", choices=sorted(COMMANDS), help=f"one command (default: {' and '.join(DEFAULT)})")
    args = p.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-dryrun-"))
    try:
        before = export(args.base, scratch / "before")
        for name in [args.only] if args.only else DEFAULT:
            compare(name, COMMANDS[name], before, scratch, args.repeats)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, load average at the end {load:.2f}")


if __name__ == "__main__":
    main()
