"""``bench cost``: parameters, MACs/FLOPs and latency of each method's deployed model, without training."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.args import Number, csv_list
from harness.core.constraints import COUNT

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    cost = sub.add_parser("cost", help="parameters, FLOPs and latency of each method's deployed model, no training")
    cost.add_argument("--methods", type=csv_list, required=True)
    cost.add_argument("--arch", required=True)
    cost.add_argument("--teacher", help="teacher architecture (for methods that need one)")
    cost.add_argument("--classes", type=Number(int, COUNT), default=100, help="number of classes (default 100)")
    cost.add_argument("--in-chans", type=Number(int, COUNT), default=3, help="input channels (default 3)")
    cost.add_argument("--input-size", type=Number(int, COUNT), default=32, help="input height and width (default 32)")
    cost.add_argument("--opt", action="append", default=[], metavar="METHOD.NAME=VALUE")
    cost.add_argument("--reference", help="a bundled reference table (e.g. table5) or a reference CSV: print its "
                                          "parameter counts beside ours")
    cost.add_argument("--latency", action="store_true", help="also time batch-1 inference")
    cost.add_argument("--device", default="cpu")


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.plugins.manager import get_plugins
    from harness.results.reference import resolve
    from harness.run.cost import measure_costs, render_costs
    from harness.run.prepare import build_methods, resolve_device

    plugins = get_plugins()
    methods = build_methods(plugins, args.methods, args.opt)
    plugins.archs.resolve(args.arch)
    reference = resolve(args.reference) if args.reference else None
    rows = measure_costs(plugins, methods, args.arch, args.classes, in_chans=args.in_chans, size=args.input_size,
                         device=resolve_device(args.device), latency=args.latency, teacher=args.teacher)
    title = f"{args.arch}, {args.classes} classes, {args.in_chans}x{args.input_size}x{args.input_size} input"
    render_costs(rows, title + (f" (reference: {args.reference})" if args.reference else ""), reference, console)
    return 0
