"""``bench cost``: parameters, MACs/FLOPs and latency of each method's deployed model, without training."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.args import Number, add_options
from harness.core.constraints import COUNT

if TYPE_CHECKING:
    from rich.console import Console

    from harness.plugins.manager import PluginSet


def add_parser(sub: argparse._SubParsersAction) -> None:
    cost = sub.add_parser("cost", help="parameters, FLOPs and latency of each method's deployed model, no training")
    # what is measured: the run options of the same names (harness/run/spec/options.py), as for bench run
    add_options(cost, ["methods", "arch", "teacher"], required=("methods", "arch"))
    cost.add_argument(
        "--dataset",
        default="cifar10",
        help="the dataset whose class count and input shape the models are built for (default cifar10;"
        " read from its declaration, or from the data for an image folder)",
    )
    cost.add_argument("--classes", type=Number(int, COUNT), help="number of classes (default: the dataset's)")
    cost.add_argument("--in-chans", type=Number(int, COUNT), help="input channels (default: the dataset's)")
    cost.add_argument("--input-size", type=Number(int, COUNT), help="input size in pixels (default: the dataset's)")
    add_options(cost, ["options"])
    cost.add_argument(
        "--reference",
        help="a bundled reference table (e.g. table5) or a reference CSV: print its parameter counts beside ours",
    )
    cost.add_argument("--latency", action="store_true", help="also time batch-1 inference (median of repeats)")
    cost.add_argument("--device", default="cpu", help="where latency is timed: cpu (default), cuda or auto")
    cost.add_argument(
        "--cache-dir", type=Path, help="where an image-folder dataset is decoded (only to read its shape)"
    )


def dataset_shape(plugins: "PluginSet", args: argparse.Namespace) -> tuple[int, int, int, str]:
    """(classes, channels, size, where they come from): the options, else the dataset's declaration, else its
    data (an image folder is decoded once, into the cache)."""
    entry = plugins.datasets.resolve(args.dataset).entry
    meta = dict(entry.meta)
    if not all(k in meta for k in ("classes", "in_chans", "input_size")) and None in (
        args.classes,
        args.in_chans,
        args.input_size,
    ):
        from harness.run.prepare import load_dataset
        from harness.run.request import RunRequest

        ds = load_dataset(
            RunRequest(methods=[], arch=args.arch, dataset=args.dataset, cache_dir=args.cache_dir), plugins
        )
        meta |= {"classes": ds.num_classes, "in_chans": ds.in_chans, "input_size": ds.input_size}
    classes = args.classes or meta["classes"]
    chans = args.in_chans or meta["in_chans"]
    size = args.input_size or meta["input_size"]
    given = [
        flag
        for flag, v in (("--classes", args.classes), ("--in-chans", args.in_chans), ("--input-size", args.input_size))
        if v
    ]
    return classes, chans, size, args.dataset + (f", {' '.join(given)} given" if given else "")


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.plugins.manager import get_plugins
    from harness.results.reference import resolve
    from harness.run.cost import measure_costs, render_costs
    from harness.run.prepare import build_methods, resolve_device

    plugins = get_plugins()
    methods = build_methods(plugins, args.methods, args.options)
    plugins.archs.resolve(args.arch)
    teacher = args.teacher
    if teacher is None and any(m.uses_teacher for m in methods):
        teacher = plugins.archs.resolve(args.arch).entry.meta.get("default_teacher")
    classes, chans, size, source = dataset_shape(plugins, args)
    reference = resolve(args.reference) if args.reference else None
    rows = measure_costs(
        plugins,
        methods,
        args.arch,
        classes,
        in_chans=chans,
        size=size,
        device=resolve_device(args.device),
        latency=args.latency,
        teacher=teacher,
    )
    title = f"{args.arch}, {classes} classes, {chans}x{size}x{size} input (from {source})"
    render_costs(rows, title + (f" (reference: {args.reference})" if args.reference else ""), reference, console)
    return 0
