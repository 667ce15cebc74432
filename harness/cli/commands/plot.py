"""``bench plot PATHS``: accuracy against size and cost, anytime and robustness curves, training curves."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.args import METRIC_CHOICES

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser(
        "plot",
        help="accuracy vs parameters and MACs (baseline marked), anytime curves of "
        "multi-exit runs, accuracy under distortion, training curves (PNG and SVG)",
    )
    plot.add_argument("paths", nargs="*", type=Path, default=[Path("results/runs")], help="record files or folders")
    plot.add_argument("--out", type=Path, default=Path("results/plots"), help="folder for the figures")
    plot.add_argument(
        "--metric",
        choices=METRIC_CHOICES,
        default="last",
        help="top-1 of the last (default), best or --select'ed epoch",
    )
    plot.add_argument("--no-curves", dest="curves", action="store_false", help="skip the per-run training curves")


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.results.records import readable_records
    from harness.results.plots import anytime, curves, efficiency, robustness
    from harness.run.preflight import check_output_dir

    check_output_dir(args.out, "--out")
    records = readable_records(args.paths, metric=args.metric)  # what is left out is named; none left: exit 2
    written = efficiency(records, args.out, args.metric) + anytime(records, args.out, args.metric)
    written += robustness(records, args.out, args.metric)
    written += curves(records, args.out) if args.curves else []
    for path in written:
        console.print(str(path))
    return 0
