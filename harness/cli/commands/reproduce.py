"""``bench reproduce TABLE``: run what a paper table needs and print it beside the reported numbers."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.args import (
    METRIC_CHOICES, add_run_arguments, dry_workers, executor_options, note_long_plan, reporter_for,
    request_from_args, run_on_executor,
)
from harness.core.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("reproduce", help="run what a paper table needs and print it beside the reported numbers")
    rep.add_argument("table", help="table2, table3, table4, table5 (EncodeNet paper) or smoke (CI)")
    rep.add_argument("--paper-dataset", help="only the table's settings on this dataset (e.g. cifar10 for table2)")
    rep.add_argument("--no-train", action="store_true", help="only the parameter/FLOP columns, from untrained models")
    rep.add_argument("--rerun", action="store_true", help="run again even where a record of the same run exists")
    rep.add_argument("--export", type=Path, help="also write the tables as markdown and CSV into this folder")
    rep.add_argument("--metric", choices=METRIC_CHOICES,
                     help="top-1 of the last or best epoch (or the --select'ed one); default: the table's protocol "
                          "(best for table4, as the paper's mdistiller runs; last for the others)")
    add_run_arguments(rep, recipe_default=None, dataset_default=None)


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.plugins.manager import get_plugins
    from harness.run import reproduce
    from harness.run.preflight import check_output_dir

    if args.table not in reproduce.TABLES:
        raise UsageError(f"unknown table '{args.table}'; reproducible tables: {', '.join(reproduce.TABLES)}")
    spec = reproduce.TABLES[args.table]
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError("bench reproduce is not for torchrun (its ranks train one 'bench run' together): spread "
                         "a table's runs with --executor/--workers instead")
    plugins = get_plugins()
    if args.no_train:
        from harness.run.cost import measure_costs, render_costs
        from harness.run.prepare import build_methods

        reference = reproduce.reference_for(spec)  # before any model is built: a missing reference is an error
        for s in spec.settings:
            if args.paper_dataset not in (None, s.dataset):
                continue
            classes = 100 if s.dataset == "cifar100" else 10
            rows = measure_costs(plugins, build_methods(plugins, list(s.methods), args.opt), s.arch, classes,
                                 teacher=s.teacher)
            render_costs(rows, f"{spec.title} | {s.arch} on {s.dataset} ({classes} classes): parameters, untrained",
                         reference, console)
        return 0
    if args.export:
        check_output_dir(args.export, "--export")
    base = request_from_args(args, methods=[], arch="", reuse_records=not args.rerun)
    reporter = reporter_for(args, console)
    executor_options(args, plugins)  # the executor and its options, also for --dry-run
    repro = reproduce.plan(args.table, base, plugins, reporter, dataset=args.dataset,
                           paper_dataset=args.paper_dataset, need_data=not args.dry_run)
    if args.dry_run:
        reproduce.dry_run([(s.teacher, run) for s, run in repro.runs], console, throughput=args.throughput,
                          workers=dry_workers(args))
        return 0
    note_long_plan([run for _, run in repro.runs])
    outcomes, failures = run_on_executor([run for _, run in repro.runs], args, plugins, reporter)
    records = [outcome.records for outcome in outcomes]
    failures += [f for outcome in outcomes for f in outcome.failures]
    markdown = reproduce.render(repro, records, console, args.metric)
    if args.export:
        from harness.core.io import atomic_write_text
        from harness.results.tables import render as render_table

        flat = [r for group in records for r in group]
        atomic_write_text(args.export / f"{args.table}.md", "\n".join(markdown))
        atomic_write_text(args.export / f"{args.table}.csv", render_table(flat, "csv", args.metric or spec.metric))
        console.print(f"exported {args.export / (args.table + '.md')} and {args.export / (args.table + '.csv')}")
    for failure in failures:
        print(f"bench: error: {failure}", file=sys.stderr)
    return 1 if failures else 0
