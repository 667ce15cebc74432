"""``bench check PATHS --reference REF``: the CI gate; exit 1 on a regression (see harness/results/check.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.args import METRIC_CHOICES, Number
from harness.core.constraints import between
from harness.core.errors import BenchError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

#: points of top-1 a check may fall below its reference: more than 100 (or inf) would pass every row
TOLERANCE = between(0, 100)

MODES = ("auto", "exact", "statistical")  # as harness.results.check.MODES (not imported: no torch at parse time)
CURVE_TESTS = ("mean", "epochs", "off")  # as harness.results.check.CURVE_TESTS (likewise)
#: the false-alarm probability of a whole check
ALPHA = between(0, 1, exclusive_minimum=True, exclusive_maximum=True)


def add_parser(sub: argparse._SubParsersAction) -> None:
    chk = sub.add_parser(
        "check",
        help="CI gate: compare records with a reference (exactly on its platform, "
        "statistically elsewhere); exit 1 on a regression",
    )
    chk.add_argument("paths", nargs="*", type=Path, default=[Path("results/runs")], help="record files or folders")
    chk.add_argument(
        "--reference",
        metavar="FILE|NAME",
        help="a reference of your own (FILE.json saved by --save-reference, or a CSV), or a bundled "
        "one by name or table id (smoke, encodenet_table4, table4, crd)",
    )
    chk.add_argument("--table", help="only the reference rows of this table id")
    chk.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="exact: every seed's losses, accuracies and weights bit for bit (a JSON reference, on its "
        "platform; elsewhere it says so and checks statistically); statistical: the seeds' "
        "spread; auto (default): exact where the platform matches, else statistical",
    )
    chk.add_argument(
        "--direction",
        choices=("both", "down"),
        default="both",
        help="statistical mode: fail on a significant shift either way (both, default: a benchmark "
        "must reproduce, not improve) or only on a top-1 drop (down)",
    )
    chk.add_argument(
        "--tolerance",
        type=Number(float, TOLERANCE),
        help="statistical mode: a fixed band of ±T top-1 points (-T with --direction down) instead of "
        "the t-test (0 to 100)",
    )
    chk.add_argument(
        "--alpha",
        type=Number(float, ALPHA),
        default=0.05,
        help="statistical mode: the false-alarm probability of the whole check, shared by its tests "
        "(Bonferroni; default 0.05)",
    )
    chk.add_argument(
        "--curves",
        choices=CURVE_TESTS,
        default="epochs",
        help="statistical mode, two-sided, JSON reference: how every stage's per-epoch training curves "
        "are tested: epochs (default: one test per epoch of each curve, against the reference seeds' spread "
        "at that epoch), mean (one test per curve on its mean over the epochs), off (the final top-1 and "
        "losses only)",
    )
    chk.add_argument(
        "--metric",
        choices=METRIC_CHOICES,
        help="which top-1 is checked: last (top1_last) or best (top1_best) epoch, or the --select'ed "
        "one; default: the reference rows' protocol, else last",
    )
    chk.add_argument("--dataset-as", help="compare records as if their dataset were this one (e.g. cifar10)")
    chk.add_argument("--junit", type=Path, help="also write a JUnit XML report here")
    chk.add_argument(
        "--save-reference",
        type=Path,
        metavar="FILE",
        help="instead of checking, save the records as a reference: FILE.json keeps every seed's values "
        "and per-epoch curves and the platform (exact mode there); FILE.csv only the means",
    )


def option_defaults(method: str) -> dict[str, Any]:
    """The declared defaults of a registered method's options (none for a method no plugin registers now)."""
    from harness.plugins.manager import get_plugins

    try:
        entry = get_plugins().methods.resolve(method).entry
    except BenchError:
        return {}
    return {k: o.default for k, o in entry.obj.options.items()}


def main(args: argparse.Namespace, console: Console) -> int:
    from harness.core.io import atomic_write_text
    from harness.results.check import (
        Settings,
        check_metric,
        compare,
        junit,
        protocol_rows,
        save_reference,
    )
    from harness.results.records import readable_records
    from harness.results.reference import resolve
    from harness.results.aggregation import METRICS
    from harness.run.preflight import check_output_file

    for flag, target in (("--save-reference", args.save_reference), ("--junit", args.junit)):
        if target:
            check_output_file(target, flag)
    if args.save_reference:
        records = readable_records(args.paths, metric=args.metric or "last")  # what is left out is named
        n, what = save_reference(records, args.save_reference, args.table or "saved", args.metric or "last")
        console.print(f"saved {n} reference row(s) to {args.save_reference}: {what}")
        return 0
    if not args.reference:
        raise UsageError("bench check needs --reference FILE (or --save-reference FILE)")
    reference = resolve(args.reference, args.table)
    metric = check_metric(reference, args.metric)
    reference, other = protocol_rows(reference, metric)
    if other:
        protocol = other[0].protocol
        print(
            f"{len(other)} reference row(s) measured at the {protocol} epoch not checked here "
            f"({', '.join(sorted({v.method for v in other}))}): --metric {protocol} checks them"
        )
    records = readable_records(args.paths, metric=metric)  # records without the checked top-1 are named too
    settings = Settings(
        mode=args.mode,
        alpha=args.alpha,
        direction=args.direction,
        tolerance=args.tolerance,
        dataset_as=args.dataset_as,
        curves=args.curves,
        option_defaults=option_defaults,
    )
    check = compare(records, reference, metric=metric, settings=settings)
    if not check.rows:
        raise UsageError(f"{args.reference} has no top-1 rows to check")
    for note in check.notes:
        print(note)
    for r in check.rows:
        print(r.line())
    print(f"checked: top-1 of the {metric} epoch ({METRICS[metric]}), {check.mode} mode")
    if check.summary():
        print(check.summary())
    # alone on its line, as CI summaries are read
    print(f"{len(check.rows) - check.failed} passed, {check.failed} failed")
    if args.junit:
        atomic_write_text(args.junit, junit(check, "bench check"))
    return 1 if check.failed else 0
