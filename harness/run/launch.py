"""Where a command's runs train: every run prepared before any trains, then trained in this process or swept
over an executor's stage jobs, with the execution options checked first.

What ``bench run``, ``bench reproduce`` and ``bench study`` share once their arguments are parsed. Importing
this module is cheap: what runs is imported when it runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from harness.core.errors import UsageError

if TYPE_CHECKING:
    from harness.core.progress import Reporter
    from harness.plugins.manager import PluginSet
    from harness.run.prepare import PreparedRun
    from harness.run.request import RunRequest
    from harness.run.sweep.backend import ExecutorOptions


def prepare_all(
    runs: list[tuple[Any, RunRequest]],
    plugins: PluginSet,
    reporter: Reporter,
    *,
    need_data: bool,
    label: str | None = None,
) -> list[tuple[Any, PreparedRun]]:
    """Prepare (and so validate) every request before anything trains; ``runs`` pair each request with where
    it was declared (a study's run, with its ``where``; None on the command line). An error of a study's run
    says which run it is (``label: [runs.2] arch=vgg8: ...``, ``label`` naming the study)."""
    from harness.run.prepare import prepare

    prepared = []
    for run, request in runs:
        try:
            prepared.append((run, prepare(request, plugins, reporter, need_data=need_data)))
        except UsageError as exc:
            if label is None or run is None:
                raise
            raise UsageError(f"{label}: {run.where}: {exc}") from None
    return prepared


def executor_options(args: Any, plugins: PluginSet | None = None) -> ExecutorOptions:
    """The execution choices of `bench run` / `bench reproduce`, checked before anything trains; with
    ``plugins``, also the executor's name and its own check of them (as for real runs, for ``--dry-run``)."""
    from harness.run.sweep.backend import ExecutorOptions, check_executor

    executor = args.executor
    if args.throughput is not None and not args.dry_run:  # the numbers themselves: their argparse types
        raise UsageError("--throughput only estimates the wall time of a --dry-run; add --dry-run")
    if args.per_gpu is not None and args.device not in ("auto", "cuda"):
        raise UsageError(
            f"--per-gpu runs jobs on every visible GPU (each job sees only its own): use --device "
            f"cuda or auto, not {args.device} (choose GPUs with CUDA_VISIBLE_DEVICES)"
        )
    slurm = dict(args.slurm or {})  # --slurm-opt NAME=VALUE items (text), a study's [execution.slurm] (typed)
    if (slurm or args.slurm_local) and executor != "slurm":
        raise UsageError("--slurm-opt and --slurm-local are options of --executor slurm")
    if args.ray_address and executor != "ray":
        raise UsageError("--ray-address is an option of --executor ray")
    options = ExecutorOptions(
        workers=args.workers,
        per_gpu=args.per_gpu,
        retries=args.retries,
        device=args.device,
        threads=args.threads,
        ray_address=args.ray_address,
        slurm=slurm,
        slurm_local=args.slurm_local,
        folder=str(args.cache_dir / "jobs"),
    )
    if plugins is not None:
        check_executor(plugins, executor, options)
    return options


def run_on_executor(
    runs: list[PreparedRun], args: Any, plugins: PluginSet, reporter: Reporter
) -> tuple[list, list[str]]:
    """Train ``runs`` in this process (``--workers 1``, the default) or as a sweep of stage jobs on the
    executor; returns each run's outcome and the failed jobs' lines."""
    from harness.run.execute import execute
    from harness.run.sweep.driver import in_process, sweep

    options = executor_options(args)
    if in_process(args.executor, options):
        return [execute(run, reporter) for run in runs], []
    swept = sweep(runs, plugins, args.executor, options, reporter, quiet=args.quiet)
    return swept.outcomes, swept.job_failures


def dry_workers(args: Any) -> int:
    """Workers a --dry-run estimates the wall time for (--workers, or --per-gpu times the visible GPUs)."""
    if args.per_gpu:
        import torch

        return args.per_gpu * max(1, torch.cuda.device_count())
    return args.workers or 1


def note_long_plan(runs: list[PreparedRun]) -> None:
    """Before training: one ``bench: note:`` line per run whose CPU plan is estimated to take over 30 minutes
    (:func:`harness.run.workload.long_plan_note`)."""
    from harness.run.workload import long_plan_note

    for run in runs:
        note = long_plan_note(run)
        if note:
            print(f"bench: note: {run.request.arch} on {run.request.dataset}: {note}", file=sys.stderr)
