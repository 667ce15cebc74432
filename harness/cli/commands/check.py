"""``bench check PATHS --reference REF``: the CI gate; exit 1 on a regression (see harness/results/check.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.args import METRIC_CHOICES, Number, records_of
from harness.core.constraints import between
from harness.core.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

#: points of top-1 a check may fall below its reference: more than 100 (or inf) would pass every row
TOLERANCE = between(0, 100)


def add_parser(sub: argparse._SubParsersAction) -> None:
    chk = sub.add_parser("check", help="CI gate: compare records with reference numbers; exit 1 on a regression")
    chk.add_argument("paths", nargs="*", type=Path, default=[Path("results/runs")], help="record files or folders")
    chk.add_argument("--reference", metavar="FILE|NAME",
                     help="a reference CSV of your own, or a bundled one by name or table id (smoke, "
                          "encodenet_table4, table4, crd)")
    chk.add_argument("--table", help="only the reference rows of this table id")
    chk.add_argument("--tolerance", type=Number(float, TOLERANCE), default=1.0,
                     help="allowed drop below the reference, in points of top-1 (0 to 100; default 1)")
    chk.add_argument("--metric", choices=METRIC_CHOICES,
                     help="which top-1 is checked: last (top1_last) or best (top1_best) epoch, or the --select'ed "
                          "one; default: the reference rows' protocol, else last")
    chk.add_argument("--dataset-as", help="compare records as if their dataset were this one (e.g. cifar10)")
    chk.add_argument("--junit", type=Path, help="also write a JUnit XML report here")
    chk.add_argument("--save-reference", type=Path, help="instead of checking, save the records' means as a reference")


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.core.io import atomic_write_text
    from harness.results.check import check_metric, compare, junit, save_reference
    from harness.results.reference import resolve
    from harness.results.tables import METRICS
    from harness.run.preflight import check_output_file

    for flag, target in (("--save-reference", args.save_reference), ("--junit", args.junit)):
        if target:
            check_output_file(target, flag)
    records = records_of(args.paths)  # what is left out is named in one warning
    if args.save_reference:
        n = save_reference(records, args.save_reference, args.table or "saved", args.metric or "last")
        console.print(f"saved {n} reference row(s) to {args.save_reference}")
        return 0
    if not args.reference:
        raise UsageError("bench check needs --reference FILE (or --save-reference FILE)")
    reference = resolve(args.reference, args.table)
    metric = check_metric(reference, args.metric)
    results = compare(records, reference, tolerance=args.tolerance, metric=metric, dataset_as=args.dataset_as)
    if not results:
        raise UsageError(f"{args.reference} has no top-1 rows to check")
    for r in results:
        print(r.line())
    failed = sum(not r.passed for r in results)
    print(f"checked: top-1 of the {metric} epoch ({METRICS[metric]})")
    print(f"{len(results) - failed} passed, {failed} failed")  # alone on its line, as CI summaries are read
    if args.junit:
        atomic_write_text(args.junit, junit(results, "bench check"))
    return 1 if failed else 0
