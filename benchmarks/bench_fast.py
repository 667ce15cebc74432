"""The fast track against ResNet-8 with the CRD recipe: top-1 and time per run, accuracy per CPU-minute (issue 33).

For each seed, two runs of ``bench run`` (each its own process, every stage trained: ``--retrain``, a fresh
output folder), on the full JPEG CIFAR-10 of ../shared/data unless told otherwise:

    fast:  --arch airbench94 --recipe fast --tta mirror-translate (--epochs E, default the recipe's 10)
    crd:   --arch resnet8 --recipe crd --epochs 10 (the 10-epoch ResNet-8 studies' budget)

and prints, per run, top-1 (for the fast track with TTA and without it, both of the same weights), the
process's wall time and CPU time (user + system, of the process and its children), and top-1 per CPU-minute;
then each configuration's mean and standard deviation over the seeds. The dataset is decoded once before the
first run (not timed). ``--amp`` adds bf16 autocast to both (refused on a CPU without bf16 instructions).

Timings mean something only alone on the machine. A quick check that it works (minutes, numbers meaningless):

    python benchmarks/bench_fast.py --seeds 0 --train-subset 2000 --test-subset 500 --epochs 1 --crd-epochs 1

The measurement (issue 33; hours on a 2-core CPU): python benchmarks/bench_fast.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASET = "imagefolder:../shared/data/cifar10-jpg.tar.gz"  # relative to the checkout's root, as the studies'


@dataclass
class Run:
    config: str
    seed: int
    top1: float
    top1_plain: float | None  # the fast track's top-1 without TTA (same weights)
    wall_s: float
    cpu_s: float

    @property
    def per_cpu_minute(self) -> float:
        return self.top1 / (self.cpu_s / 60)


def bench_command() -> list[str]:
    return [sys.executable, "-m", "harness"]


def configs(args: argparse.Namespace) -> dict[str, list[str]]:
    fast = ["--arch", "airbench94", "--recipe", "fast", "--tta", args.tta]
    if args.epochs is not None:
        fast += ["--epochs", str(args.epochs)]
    crd = ["--arch", "resnet8", "--recipe", "crd", "--epochs", str(args.crd_epochs)]
    out = {"fast (airbench94)": fast}
    if not args.skip_crd:
        out[f"crd (resnet8, {args.crd_epochs} ep)"] = crd
    return out


def common(args: argparse.Namespace) -> list[str]:
    flags = [
        "--methods",
        "baseline",
        "--dataset",
        args.dataset,
        "--threads",
        str(args.threads),
        "--no-latency",
        "--quiet",
        "--cache-dir",
        str(args.cache_dir),
    ]
    if args.train_subset:
        flags += ["--train-subset", str(args.train_subset)]
    if args.test_subset:
        flags += ["--test-subset", str(args.test_subset)]
    flags += ["--amp"] if args.amp else ["--no-amp"]
    return flags


def decode_once(args: argparse.Namespace) -> None:
    """Load (and cache) the dataset before anything is timed: a dry run of the first configuration does not
    decode it, so the harness's own loader is called in this process."""
    sys.path.insert(0, str(REPO))
    from harness.cli.args import run_parser, run_request
    from harness.plugins.manager import load_plugins
    from harness.run.prepare import load_dataset

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        parsed = run_parser().parse_args(["--arch", "resnet8", *common(args)])
        load_dataset(run_request(parsed), load_plugins(warn=False))
    finally:
        os.chdir(cwd)


def one_run(name: str, flags: list[str], seed: int, args: argparse.Namespace) -> Run:
    out = Path(tempfile.mkdtemp(prefix="bench-fast-"))
    command = [*bench_command(), "run", *flags, *common(args), "--seeds", str(seed), "--retrain", "--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"bench_fast: {name}, seed {seed} failed (exit {done.returncode}): {done.stderr.strip()[-600:]}")
    (record,) = [json.loads(p.read_text()) for p in out.glob("*.json")]
    last = record["curves"][-1]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(name, seed, record["metrics"]["top1_last"], last.get("test_acc_plain"), wall, cpu)


def summary(runs: list[Run]) -> str:
    def spread(values: list[float]) -> str:
        return f"{statistics.mean(values):.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")

    lines = [
        f"{'configuration':<24} {'seed':>4} {'top-1':>7} {'no TTA':>7} {'wall s':>8} {'CPU min':>8} "
        f"{'top-1/CPU-min':>13}"
    ]
    for r in runs:
        plain = f"{r.top1_plain:7.2f}" if r.top1_plain is not None else f"{'-':>7}"
        lines.append(
            f"{r.config:<24} {r.seed:>4} {r.top1:7.2f} {plain} {r.wall_s:8.1f} {r.cpu_s / 60:8.2f} "
            f"{r.per_cpu_minute:13.2f}"
        )
    lines.append("")
    for name in dict.fromkeys(r.config for r in runs):
        mine = [r for r in runs if r.config == name]
        lines.append(
            f"{name}: top-1 {spread([r.top1 for r in mine])} over {len(mine)} seed(s), wall "
            f"{spread([r.wall_s for r in mine])} s per run, top-1 per CPU-minute "
            f"{spread([r.per_cpu_minute for r in mine])}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, help="the fast track's epochs (default: the fast recipe's 10)")
    parser.add_argument("--crd-epochs", type=int, default=10)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for both (CPUs with bf16 instructions)")
    parser.add_argument("--tta", default="mirror-translate", choices=("none", "mirror", "mirror-translate"))
    parser.add_argument("--train-subset", type=int, help="a quick check: train on this many images")
    parser.add_argument("--test-subset", type=int, help="a quick check: test on this many images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--skip-crd", action="store_true", help="the fast track only")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "bench-fast-cache",
        help="decoded data (and the runs' artifacts, retrained every time)",
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"bench_fast: {os.cpu_count()} CPU(s), {args.threads} torch thread(s), dataset {args.dataset}"
        + (f", train subset {args.train_subset}" if args.train_subset else "")
        + (f", test subset {args.test_subset}" if args.test_subset else "")
        + (", bf16" if args.amp else ", fp32"),
        flush=True,
    )
    decode_once(args)
    runs = []
    for seed in seeds:
        for name, flags in configs(args).items():
            runs.append(one_run(name, flags, seed, args))
            r = runs[-1]
            print(
                f"  {name}, seed {seed}: top-1 {r.top1:.2f}, {r.wall_s:.1f} s wall, {r.cpu_s / 60:.2f} CPU-min",
                flush=True,
            )
    print(summary(runs))


if __name__ == "__main__":
    main()
