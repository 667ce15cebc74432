"""The statistical mode's false-alarm rate and the effect sizes it faces, measured on the smoke reference.

Two questions that ``gate_power.py`` (which counts caught bugs) does not answer, answered without training:

1. **False alarms, by leaving seeds out.** Each seed of the bundled smoke reference in turn is taken as "the
   CI run" and checked (``bench check --mode statistical``, this working tree's check code) against the
   reference, which compares it with the other 7 seeds (the check leaves a measured seed out of the reference
   seeds it is compared with: :func:`harness.results.check.independent_seeds`); then each pair of seeds
   against the other 6. Nothing changed between those runs, so every failing check is a false alarm: with
   ``--alpha 0.05`` over the whole check, about 5% of the draws may fail (8 single draws and 28 pairs are
   few, and they share seeds: the counts show gross miscalibration, not the third digit).
2. **Effect sizes.** For every run of a folder kept by ``gate_power.py --keep`` (a mutation, seed 0), the
   largest |t| over the statistical tests of that check (seed 0 against the other 7 reference seeds), next to
   the Bonferroni critical value of the check and the largest |t| of the single leave-one-out draws above
   (what unmodified code reaches). A bug whose largest |t| is
   within the null draws' range moves no number beyond the seeds' spread at this budget: no test of these
   numbers can tell it from a seed, whatever it combines.

The reference seeds are turned into records by taking the kept clean run's record of each row (its setup
and platform) and giving it the seed's curves, stage curves and metrics (the numbers a check reads). The
synthesis is faithful when each seed's record passes the exact mode against the full reference.

Usage: python benchmarks/gate_null.py KEPT [--curves mean,epochs] [--out benchmarks/results/gate_null.txt]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.results import check as C  # noqa: E402
from harness.results.records import Record, readable_records  # noqa: E402
from harness.results.reference import RefValue, resolve  # noqa: E402
from harness.results.stats import shift_test  # noqa: E402


def seed_records(reference: list[RefValue], seed: int, templates: dict[str, Record]) -> list[Record]:
    """Records of one reference seed: each row's template record (its setup and platform; by method name) with
    the seed's numbers: every stage's curves, the deployed stage's curves and the metrics."""
    out = []
    for ref in reference:
        run = next(s for s in ref.seeds if s.seed == seed)
        record = copy.deepcopy(templates[ref.method])
        record["seed"] = seed
        stages = {str(stage["label"]): stage for stage in run.trace["stages"]}
        for label, entry in record["stages"].items():
            entry["curves"] = copy.deepcopy(stages[label]["curves"])
            entry["digest"] = stages[label]["digest"]
        record["curves"] = copy.deepcopy(run.trace["stages"][-1]["curves"])
        record["metrics"] = {**record["metrics"], **run.trace["metrics"]}
        out.append(record)
    return out


def statistical(records: list[Record], reference: list[RefValue], curves: str) -> C.Check:
    return C.compare(records, reference, metric="last", settings=C.Settings(mode="statistical", curves=curves))


def largest_t(records: list[Record], reference: list[RefValue], curves: str) -> tuple[float, str, int]:
    """(largest |t|, its row and series, the number of tests) over the statistical tests of one check; a
    changed model or schedule is reported as infinite (it fails whatever the spread)."""
    rows = C.pair(records, reference, "last", None)
    settings = C.Settings(mode="statistical", curves=curves)
    seen: set[tuple[float, ...]] = set()
    best, where, tests = 0.0, "", 0
    for c in rows:
        differs = C.structure_differences(c) or C.schedule_differences(c)
        if differs:
            best, where = float("inf"), f"{c.ref.method}: {differs[0]}"
            continue
        for label, ref, now, _ in C.statistical_plan(c, "last", settings, seen):
            test = shift_test(ref, now)
            tests += 1
            t = abs(test.delta / test.scale) if test.scale else 0.0
            if t > best:
                best, where = t, f"{c.ref.method}: {label}"
    return best, where, tests


def failures(check: C.Check) -> str:
    return "; ".join(
        f"{r.ref.method}: {r.text.split('(shifted)')[0].rsplit('; ', 1)[-1].strip()}"
        for r in check.rows
        if not r.passed
    )


def main(argv: Sequence[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kept", type=Path, help="a folder kept by gate_power.py --keep (runs/<mutation>/ each)")
    p.add_argument("--curves", default="mean,epochs", help="the --curves modes to measure (comma-separated)")
    p.add_argument("--out", type=Path, help="also write the report here")
    args = p.parse_args(argv)
    from scipy import stats

    reference = resolve("smoke", "smoke")
    templates = {r["method"]["name"]: r for r in readable_records([args.kept / "runs" / "clean"], metric="last")}
    seeds = sorted({s.seed for s in reference[0].seeds})
    lines = [
        f"gate_null.py, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: the bundled smoke reference "
        f"({len(seeds)} seeds), runs of {args.kept}"
    ]
    exact = C.compare(
        seed_records(reference, seeds[-1], templates), reference, metric="last", settings=C.Settings(mode="exact")
    )
    lines.append(
        f"synthesised records of seed {seeds[-1]} in the exact mode against the full reference: "
        f"{len(exact.rows) - exact.failed} passed, {exact.failed} failed ({exact.mode})"
    )
    runs = sorted(d for d in (args.kept / "runs").iterdir() if d.is_dir())
    for curves in args.curves.split(","):
        lines += ["", f"--curves {curves}, alpha 0.05 over the whole check"]
        null_t = []
        for k in (1, 2):
            alarms = []
            draws = list(itertools.combinations(seeds, k))
            for chosen in draws:
                records = [r for s in chosen for r in seed_records(reference, s, templates)]
                check = statistical(records, reference, curves)  # the check leaves the measured seeds out
                if check.failed:
                    alarms.append(f"    seed(s) {','.join(map(str, chosen))}: {failures(check)}")
                if k == 1:
                    null_t.append(largest_t(records, reference, curves)[0])
            lines.append(
                f"  false alarms, {k} seed(s) as the CI run against the other {len(seeds) - k}: "
                f"{len(alarms)} of {len(draws)} draws"
            )
            lines += alarms
        _, _, tests = largest_t(seed_records(reference, seeds[0], templates), reference, curves)
        critical = stats.t.ppf(1 - 0.05 / 2 / tests, len(seeds) - 2)
        lines.append(
            f"  largest |t| of the single draws (unmodified code): "
            f"{' '.join(f'{t:.2f}' for t in null_t)} (max {max(null_t):.2f})"
        )
        lines.append(
            f"  effect sizes of the kept runs (seed 0 against the other {len(seeds) - 1} reference seeds; "
            f"{tests} tests, Bonferroni critical |t| {critical:.2f}):"
        )
        for run in runs:
            records = readable_records([run], metric="last")
            t, where, _ = largest_t(records, reference, curves)
            verdict = (
                "beyond the critical value"
                if t > critical
                else "beyond every null draw"
                if t > max(null_t)
                else "within the null draws"
            )
            lines.append(f"    {run.name:30s} largest |t| {t:6.2f} ({verdict}): {where}")
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    return text


if __name__ == "__main__":
    print(main(), end="")
