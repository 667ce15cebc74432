"""``bench reproduce TABLE``: run what a paper table needs and print it beside the reported numbers.

A table is a study file: a bundled one (``table2`` ... ``table5``, ``smoke``: ``harness/studies/``) or any
study file with a ``[study] reference`` (a copy of a bundled one, edited)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.args import METRIC_CHOICES, add_run_arguments, reporter_for
from harness.core.errors import UsageError
from harness.run.launch import executor_options, note_long_plan, prepare_all, run_on_executor

if TYPE_CHECKING:
    from rich.console import Console

    from harness.cli.study.load import Study
    from harness.results.records import Record
    from harness.run.prepare import PreparedRun
    from harness.run.reproduce import Setting, TableSpec


def add_parser(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("reproduce", help="run what a paper table needs and print it beside the reported numbers")
    rep.add_argument(
        "table",
        help="table2, table3, table4, table5 (EncodeNet paper), crd (the CRD benchmark, "
        "RepDistiller), smoke (CI), or a study file "
        "with a [study] reference (e.g. an edited copy: bench study copy table2 FILE)",
    )
    rep.add_argument("--paper-dataset", help="only the table's settings on this dataset (e.g. cifar10 for table2)")
    rep.add_argument("--no-train", action="store_true", help="only the parameter/FLOP columns, from untrained models")
    rep.add_argument("--rerun", action="store_true", help="run again even where a record of the same run exists")
    rep.add_argument("--export", type=Path, help="also write the tables as markdown and CSV into this folder")
    rep.add_argument(
        "--metric",
        choices=METRIC_CHOICES,
        help="top-1 of the last or best epoch (or the --select'ed one); default: the table's protocol "
        "(best for table4, as the paper's mdistiller runs; last for the others)",
    )
    add_run_arguments(rep, recipe_default=None, dataset_default=None)


def setting(values: dict[str, Any]) -> "Setting":
    """A study run's paper setting, from the values its file gives (before command-line options)."""
    from harness.run.reproduce import Setting

    return Setting(values["dataset"], values["arch"], tuple(values["methods"]), values["teacher"], values["recipe"])


def table_spec(study: "Study") -> "TableSpec":
    """The paper table a study file declares; a study without a ``[study] reference`` is no table."""
    from harness.run.reproduce import TableSpec

    meta = study.meta
    if not meta.get("reference"):
        raise UsageError(
            f"{study.label}: [study] reference: bench reproduce sets measured numbers beside a "
            f'reference table; give one (e.g. reference = "table2"), or run the study with bench run'
        )
    return TableSpec(
        study.name,
        meta["title"],
        tuple(setting(r.declared) for r in study.runs),
        reference_table=meta["reference"],
        metric=meta["metric"],
        protocol_note=meta["protocol_note"],
    )


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.cli.study import resolved
    from harness.cli.study.session import find, open_study, preview
    from harness.plugins.manager import get_plugins
    from harness.run import reproduce
    from harness.run.preflight import check_output_dir

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError(
            "bench reproduce is not for torchrun (its ranks train one 'bench run' together): spread "
            "a table's runs with --executor/--workers instead"
        )
    keep = None if args.paper_dataset is None else (lambda run: run.declared["dataset"] == args.paper_dataset)
    study = open_study(args.table, args, keep)
    if not study.runs:
        datasets = sorted({r.declared["dataset"] for r in find(args.table).runs})
        raise UsageError(f"{study.label} has no setting on {args.paper_dataset}; its datasets: {', '.join(datasets)}")
    spec = table_spec(study)
    reference = reproduce.reference_for(spec)  # before any model is built: a missing reference is an error
    plugins = get_plugins()
    runs = study.requests(reuse_records=not args.rerun)
    if args.no_train:
        from harness.run.cost import measure_costs, render_costs
        from harness.run.prepare import build_methods

        for run, request in runs:
            s = setting(run.declared)
            classes = 100 if s.dataset == "cifar100" else 10
            rows = measure_costs(
                plugins,
                build_methods(plugins, request.methods, request.options),
                request.arch,
                classes,
                teacher=request.teacher,
            )
            render_costs(
                rows,
                f"{spec.title} | {request.arch} on {s.dataset} ({classes} classes): parameters, untrained",
                reference,
                console,
            )
        return 0
    if args.export:
        check_output_dir(args.export, "--export")
    run_args = study.namespace(cli=args)
    reporter = reporter_for(run_args, console)
    executor_options(run_args, plugins)
    prepared = prepare_all(runs, plugins, reporter, need_data=not run_args.dry_run, label=study.label)
    if run_args.dry_run:
        preview(study, prepared, run_args, console)
        return 0
    copy, prepared = resolved.record(study, prepared)
    console.print(f"study '{study.name}': resolved copy {copy}")
    note_long_plan([p for _, p in prepared])
    outcomes, failures = run_on_executor([p for _, p in prepared], run_args, plugins, reporter)
    # order = "seeds" prepares a study run once per seed: one setting, with the records of all its seeds
    by_run: dict[int, tuple[Setting, PreparedRun, list[Record]]] = {}
    for (run, p), outcome in zip(prepared, outcomes):
        assert run is not None
        by_run.setdefault(id(run), (setting(run.declared), p, []))[2].extend(outcome.records)
    repro = reproduce.Reproduction(spec, [(s, p) for s, p, _ in by_run.values()])
    records = [group for _, _, group in by_run.values()]
    failures += [f for outcome in outcomes for f in outcome.failures]
    markdown = reproduce.render(repro, records, console, args.metric)
    if args.export:
        from harness.core.io import atomic_write_text
        from harness.results.tables import render as render_table

        flat = [r for group in records for r in group]
        atomic_write_text(args.export / f"{spec.name}.md", "\n".join(markdown))
        atomic_write_text(args.export / f"{spec.name}.csv", render_table(flat, "csv", args.metric or spec.metric))
        console.print(f"exported {args.export / (spec.name + '.md')} and {args.export / (spec.name + '.csv')}")
    for failure in failures:
        print(f"bench: error: {failure}", file=sys.stderr)
    return 1 if failures else 0
