"""``bench run``: train methods on one architecture and dataset, or the runs of a study file; write records,
print a table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.args import add_run_arguments, add_target_arguments, reporter_for, run_request
from harness.core.errors import UsageError
from harness.run.launch import dry_workers, executor_options, note_long_plan, prepare_all, run_on_executor

if TYPE_CHECKING:
    from rich.console import Console

    from harness.core.progress import Reporter
    from harness.plugins.manager import PluginSet
    from harness.run.request import RunRequest
    from harness.run.sweep.backend import ExecutorOptions
    from harness.train.distributed import World


def add_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="train methods on one architecture and dataset (or a study file's runs), write records, print a table",
    )
    run.add_argument(
        "study",
        nargs="?",
        type=Path,
        help="a study file (TOML, docs/studies.md) or bundled study declaring the runs; the options "
        "below override its values",
    )
    add_target_arguments(run)
    add_run_arguments(run, recipe_default="crd", dataset_default="cifar10")


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.cli.study import resolved
    from harness.cli.study.session import open_study
    from harness.plugins.manager import get_plugins
    from harness.results.tables import render
    from harness.run.sweep.backend import wants_cuda
    from harness.train.distributed import World

    study = open_study(args.study, args) if args.study is not None else None
    missing = [flag for flag, value in (("--methods", args.methods), ("--arch", args.arch)) if not value]
    if study is None and missing:
        raise UsageError(
            f"the following arguments are required: {', '.join(missing)}, or a study file: bench run "
            f"STUDY.toml (see 'bench run -h')"
        )
    run_args = study.namespace(cli=args) if study is not None else args
    runs = study.requests() if study is not None else [(None, run_request(args))]
    plugins = get_plugins()
    reporter = reporter_for(run_args, console)
    options = executor_options(run_args, plugins)
    world = None if run_args.dry_run else World.from_env(cuda=wants_cuda(run_args.device))
    if world is not None:
        if study is not None:
            raise UsageError(
                "a study file under torchrun is not supported (its ranks train one 'bench run' "
                "together): give the run's options as flags, or spread a study's runs with "
                "--executor/--workers"
            )
        return distributed(runs[0][1], world, plugins, reporter, options, args, console)
    prepared = prepare_all(
        runs, plugins, reporter, need_data=not run_args.dry_run, label=study.label if study is not None else None
    )
    if run_args.dry_run:
        from harness.cli.study.session import preview
        from harness.run import reproduce

        if study is not None:
            preview(study, prepared, run_args, console)
        else:
            reproduce.dry_run([(None, prepared[0][1])], console, throughput=args.throughput, workers=dry_workers(args))
        return 0
    if study is not None:
        copy, prepared = resolved.record(study, prepared)
        console.print(f"study '{study.name}': {len(study.runs)} run(s); resolved copy {copy}")
    note_long_plan([run for _, run in prepared])
    outcomes, job_failures = run_on_executor([run for _, run in prepared], run_args, plugins, reporter)
    records = [r for outcome in outcomes for r in outcome.records]
    if records:
        render(records, "rich", console=console)
        console.print(f"{sum(len(o.paths) for o in outcomes)} record(s) written to {prepared[0][1].request.out}/")
    failures = job_failures + [f for outcome in outcomes for f in outcome.failures]
    for failure in failures:
        print(f"bench: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def distributed(
    request: "RunRequest",
    world: "World",
    plugins: "PluginSet",
    reporter: "Reporter",
    options: "ExecutorOptions",
    args: argparse.Namespace,
    console: "Console",
) -> int:
    """One run trained by torchrun's ranks together; the main rank writes the records and prints them."""
    from harness.core.progress import Reporter
    from harness.results.tables import render
    from harness.run.sweep.driver import in_process
    from harness.run.torchrun import run_distributed

    outcome = run_distributed(
        request, world, plugins, reporter if world.is_main else Reporter(), single=in_process(args.executor, options)
    )
    if not world.is_main:
        return 0
    if outcome.records:
        render(outcome.records, "rich", console=console)
        console.print(f"{len(outcome.paths)} record(s) written to {request.out}/ (world size {world.size})")
    for failure in outcome.failures:
        print(f"bench: error: {failure}", file=sys.stderr)
    return 1 if outcome.failures else 0
