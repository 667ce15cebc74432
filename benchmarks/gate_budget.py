"""What a smoke gate budget costs and what its statistical mode can then detect.

For each budget (training images, epochs) it runs the smoke table (``bench reproduce smoke``: baseline, se, kd
<- resnet14, encodenet on resnet8, cifar10-mini) for a number of seeds into a fresh artifact cache, and prints
per budget: the wall and CPU time of one seed (all of its runs: the teacher, the shared baseline, every
method's stages), and per method the seed-to-seed spread of the top-1 and of the final train and test
losses, with the smallest top-1 shift the statistical check (:class:`harness.results.stats.ShiftTest`, alpha
0.05 shared over the gate's tests) detects with 80% probability for a reference of N seeds and K seeds in CI.
Timings are of this machine as loaded at the time: the header says the load average.

Usage: python benchmarks/gate_budget.py --budget 2000x3:8 --budget 1000x3:4 [--threads 1] [--methods baseline,se]
       [--out FILE]
       (IMAGESxEPOCHS:SEEDS; records go to --keep DIR when given, so that they can be saved as a reference)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.results.stats import shift_test  # noqa: E402  (after the path set-up above)


def run_budget(images: int, epochs: int, seeds: int, threads: int, keep: Path | None, methods: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="gate-budget-") as tmp:
        out = (
            (keep / f"{images}x{epochs}{'-' + methods.replace(',', '-') if methods else ''}")
            if keep
            else Path(tmp) / "runs"
        )
        what = (
            ["reproduce", "smoke"]
            if not methods
            else ["run", "--methods", methods, "--arch", "resnet8", "--dataset", "cifar10-mini", "--recipe", "smoke"]
        )
        cmd = [
            sys.executable,
            "-m",
            "harness",
            *what,
            "--train-subset",
            str(images),
            "--epochs",
            str(epochs),
            "--seeds",
            ",".join(map(str, range(seeds))),
            "--threads",
            str(threads),
            "--quiet",
            "--no-latency",
            "--cache-dir",
            str(Path(tmp) / "cache"),
            "--out",
            str(out),
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(
            cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        records = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "images": images,
        "epochs": epochs,
        "seeds": seeds,
        "wall": wall / seeds,
        "cpu": cpu / seeds,
        "records": records,
        "methods": methods or "the smoke table",
    }


def spread(records: list[dict], method: str, get) -> list[float]:
    return [get(r) for r in sorted(records, key=lambda r: r["seed"]) if r["method"]["name"] == method]


MEASURES = {
    "top-1": lambda r: r["metrics"]["top1_last"],
    "train loss": lambda r: r["curves"][-1]["train_loss"],
    "test loss": lambda r: r["curves"][-1]["test_loss"],
}


def report(results: list[dict], threads: int, pairs: list[tuple[int, int]]) -> str:
    lines = [
        (
            f"gate_budget.py, {date.today().isoformat()}, {platform.machine()} "
            f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end), --threads {threads}"
        )
    ]
    tests = 4 * 3  # the smoke gate's statistical tests: 4 rows x (top-1, train loss, test loss)
    lines.append(
        f"'detects': the smallest top-1 shift failed with 80% probability, alpha 0.05 / {tests} per test "
        f"(the smoke gate's 4 rows x 3 numbers), a reference of N seeds and K seeds measured, at the "
        f"spread measured here"
    )
    for res in results:
        lines.append(
            f"\n== {res['images']} training images x {res['epochs']} epochs, {res['seeds']} seeds: "
            f"{res['wall']:.0f} s wall, {res['cpu']:.0f} s CPU per seed ({res['methods']}, every stage)"
        )
        header = ["method"] + [f"{m} mean ± sd" for m in MEASURES] + [f"top-1 detects (N={n}, K={k})" for n, k in pairs]
        rows = []
        for method in [
            m for m in ("baseline", "se", "kd", "encodenet") if any(r["method"]["name"] == m for r in res["records"])
        ]:
            cells = [method]
            for get in MEASURES.values():
                values = spread(res["records"], method, get)
                sd = statistics.stdev(values) if len(values) > 1 else float("nan")
                digits = 2 if get is MEASURES["top-1"] else 4
                cells.append(f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}")
            top1 = spread(res["records"], method, MEASURES["top-1"])
            sd = statistics.stdev(top1)
            for n, k in pairs:  # a reference of n seeds with this spread, k measured seeds
                ref = [statistics.fmean(top1) + sd * z for z in _unit(n)]
                now = [statistics.fmean(top1) + sd * z for z in _unit(k)] if k > 1 else [statistics.fmean(top1)]
                mde = shift_test(ref, now, alpha=0.05 / tests).detectable()
                cells.append(f"{mde:.2f}" if mde is not None else "-")
            rows.append(cells)
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
        for cells in [header, *rows]:
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)))
    return "\n".join(lines) + "\n"


def _unit(n: int) -> list[float]:
    """n values with mean 0 and sample standard deviation 1 (so a spread can be given to n seeds)."""
    if n == 1:
        return [0.0]
    raw = [i - (n - 1) / 2 for i in range(n)]
    sd = statistics.stdev(raw)
    return [x / sd for x in raw]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", action="append", required=True, metavar="IMAGESxEPOCHS:SEEDS")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--methods", help="bench run these methods (resnet8, no teacher) instead of the smoke table")
    p.add_argument("--pairs", default="8:1,8:2,4:2", help="reference seeds N : CI seeds K, for the detectable shift")
    p.add_argument("--keep", type=Path, help="keep each budget's records in DIR/IMAGESxEPOCHS")
    p.add_argument("--out", type=Path, help="also write the report here")
    args = p.parse_args()
    pairs = [(int(a), int(b)) for a, b in (x.split(":") for x in args.pairs.split(","))]
    results = []
    for spec in args.budget:
        size, seeds = spec.split(":")
        images, epochs = (int(x) for x in size.split("x"))
        results.append(run_budget(images, epochs, int(seeds), args.threads, args.keep, args.methods))
        print(report(results[-1:], args.threads, pairs), flush=True)
    text = report(results, args.threads, pairs)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
