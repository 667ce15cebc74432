"""``bench rank A B``: do two studies rank the same methods the same way (Kendall's tau-b and its p)?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.args import METRIC_CHOICES, csv_list

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    rank = sub.add_parser(
        "rank",
        help="compare two studies' rankings of the same methods (Kendall's tau-b and its p)",
        description="Each of A and B is record files or a folder of one comparable group (one table of "
        "`bench table`); rows are matched by method name (a method's row without options where it has "
        "several); the statistic is Kendall's tau-b of the row means, with its two-sided p.",
    )
    rank.add_argument("a", type=Path, help="the first study's records (a folder or a record file)")
    rank.add_argument("b", type=Path, help="the second study's records")
    rank.add_argument(
        "--metric", choices=METRIC_CHOICES, default="last", help="last epoch (default), best, or the --select'ed one"
    )
    rank.add_argument(
        "--methods", type=csv_list, metavar="METHOD,...", help="these methods (default: every method both have)"
    )


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.results.aggregation import collect
    from harness.results.ranking import agreement, render, side
    from harness.results.records import readable_records

    a, b = (
        side(collect(readable_records([path], metric=args.metric), args.metric), str(path)) for path in (args.a, args.b)
    )
    sys.stdout.write(render(agreement(a, b, args.methods), args.metric))
    return 0
