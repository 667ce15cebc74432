"""``bench table PATHS``: records rendered as comparison tables (one per comparable group)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.args import METRIC_CHOICES, TABLE_FORMATS, csv_list

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    tab = sub.add_parser("table", help="render records as a comparison table")
    tab.add_argument("paths", nargs="*", type=Path, default=[Path("results/runs")], help="record files or folders")
    tab.add_argument(
        "--format",
        choices=TABLE_FORMATS,
        default="rich",
        help="rich (a terminal table, compact by default), markdown, csv or json (every number)",
    )
    tab.add_argument(
        "--metric",
        choices=METRIC_CHOICES,
        default="last",
        help="last epoch (default, CRD protocol), best epoch, or the --select'ed epoch",
    )
    tab.add_argument(
        "--export", type=Path, metavar="PREFIX", help="also write PREFIX.md and PREFIX.csv next to the terminal table"
    )
    tab.add_argument(
        "--wide",
        action="store_true",
        help="the terminal table with every column (default: method, top-1, delta, p, params, MACs)",
    )
    tab.add_argument(
        "--columns",
        type=csv_list,
        metavar="KEY,...",
        help="these columns, in this order (terminal and markdown): method, top1, ci95, delta, p, seeds, "
        "params, extra_params, macs, flops, size, latency, train_compute, teacher, or a distortion "
        "such as noise:0.1",
    )
    tab.add_argument(
        "--against",
        metavar="METHOD",
        help="the row Δ and p (Welch) compare every other row of the same table with: this method "
        "without options, with the row's teacher where it has several (default: baseline; "
        "size ratios stay against the baseline)",
    )


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.results.records import readable_records
    from harness.results.tables import render
    from harness.run.preflight import check_output_file

    if args.export:
        check_output_file(args.export.with_name(args.export.name + ".md"), "--export")
    records = readable_records(args.paths, failed=True, metric=args.metric)  # failed runs are counted, never aggregated
    text = render(
        records, args.format, args.metric, console=console, columns=args.columns, wide=args.wide, against=args.against
    )
    if text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    if args.export:
        from harness.core.io import atomic_write_text

        for fmt, suffix in (("markdown", ".md"), ("csv", ".csv")):
            path = args.export.with_name(args.export.name + suffix)
            atomic_write_text(path, render(records, fmt, args.metric, against=args.against))
            console.print(f"wrote {path}")
    return 0
