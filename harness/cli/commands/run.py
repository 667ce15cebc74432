"""``bench run``: train methods on one architecture and dataset, write records, print a table."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from harness.cli.args import (
    add_run_arguments, csv_list, dry_workers, executor_options, note_long_plan, reporter_for, request_from_args,
    run_on_executor,
)

if TYPE_CHECKING:
    from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="train methods on one architecture and dataset, write records, print a table")
    run.add_argument("--methods", type=csv_list, required=True, help="comma-separated method names, e.g. baseline,kd")
    run.add_argument("--arch", required=True, help="architecture, e.g. resnet20, vgg8, resnet50, timm:convnext_atto")
    run.add_argument("--teacher", help="teacher architecture for distillation methods (trained once, reused)")
    run.add_argument("--teacher-checkpoint", metavar="SOURCE",
                     help="a trained teacher: a bundle (bench artifacts export), a bench record (.json), artifact (.pt) "
                          "or plain state dict (with --teacher); or a bundle at file:// or https://...#sha256=HEX or "
                          "hf-hub:ORG/NAME[/FILE][@REV] (see docs/teachers.md)")
    add_run_arguments(run, recipe_default="crd", dataset_default="cifar10")


def main(args: argparse.Namespace, console: "Console") -> int:
    from harness.plugins.manager import get_plugins
    from harness.results.tables import render
    from harness.run.prepare import prepare
    from harness.run.sweep.driver import in_process
    from harness.run.sweep.backend import wants_cuda
    from harness.train.distributed import World

    plugins = get_plugins()
    request = request_from_args(args, methods=args.methods, arch=args.arch, teacher=args.teacher,
                                teacher_checkpoint=args.teacher_checkpoint)
    reporter = reporter_for(args, console)
    options = executor_options(args)
    world = None if args.dry_run else World.from_env(cuda=wants_cuda(args.device))
    if world is not None:
        from harness.core.progress import Reporter
        from harness.run.torchrun import run_distributed

        outcome = run_distributed(request, world, plugins, reporter if world.is_main else Reporter(),
                                  single=in_process(args.executor, options))
        if not world.is_main:
            return 0
        if outcome.records:
            render(outcome.records, "rich", console=console)
            console.print(f"{len(outcome.paths)} record(s) written to {request.out}/ (world size {world.size})")
        for failure in outcome.failures:
            print(f"bench: error: {failure}", file=sys.stderr)
        return 1 if outcome.failures else 0
    prepared = prepare(request, plugins, reporter, need_data=not args.dry_run)
    if args.dry_run:
        from harness.run import reproduce

        reproduce.dry_run([(None, prepared)], console, throughput=args.throughput, workers=dry_workers(args))
        return 0
    note_long_plan([prepared])
    (outcome,), job_failures = run_on_executor([prepared], args, plugins, reporter)
    if outcome.records:
        render(outcome.records, "rich", console=console)
        console.print(f"{len(outcome.paths)} record(s) written to {request.out}/")
    failures = job_failures + outcome.failures
    for failure in failures:
        print(f"bench: error: {failure}", file=sys.stderr)
    return 1 if failures else 0
