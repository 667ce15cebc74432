"""`bench run` / `bench reproduce` on an executor: build the stage graph, run it, then write the records.

The records are built on the driver exactly as an in-process run builds them (:func:`harness.run.execute.execute`),
with a stage runner that loads every stage from the artifact store: a stage a job of this sweep trained is
reported ``trained`` by its first consumer (``shared`` by the next ones), a stage found in the store
``cache``; a method whose stage is missing (its job failed) gets a failed record.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from harness.core import numerics
from harness.core.progress import Reporter
from harness.plugins.manager import PluginSet
from harness.run.execute import RunOutcome, execute
from harness.run.prepare import PreparedRun
from harness.run.sweep.backend import ExecutorOptions, job_threads, start_backend
from harness.run.sweep.graph import build_graph
from harness.run.sweep.jobs import StoreRunner
from harness.run.sweep.schedule import run_graph


@dataclass
class SweepRun:
    outcomes: list[RunOutcome]
    job_failures: list[str]


def in_process(executor: str, options: ExecutorOptions) -> bool:
    """Today's path: the local executor with one worker trains in this process, as `bench run` always did."""
    return executor == "local" and (options.workers or 1) == 1 and options.per_gpu is None


def jobs_threads(runs: list[PreparedRun], options: ExecutorOptions, capacity: int) -> int:
    """Every job's CPU threads: ``--threads``, else the count a numerics profile of the runs fixes (``portable``:
    one, as its bits are defined), else this machine's CPUs divided among ``capacity`` jobs."""
    fixed = [p.threads for p in (numerics.profile(run.request.numerics) for run in runs) if p.threads]
    return options.threads or (min(fixed) if fixed else job_threads(options, capacity))


def sweep(
    runs: list[PreparedRun],
    plugins: PluginSet,
    executor: str,
    options: ExecutorOptions,
    reporter: Reporter,
    *,
    quiet: bool = True,
) -> SweepRun:
    backend = start_backend(plugins, executor, options)  # a missing extra is a UsageError, before training
    graph = build_graph(runs, quiet=quiet, threads=jobs_threads(runs, options, backend.capacity))
    for run in runs:
        run.release_planning()  # the dry resolutions' models: not held while the jobs train
    result = run_graph(graph, backend, retries=options.retries, reporter=reporter)
    swept = result.trained_keys()
    execution = backend.describe() | {"sweep_seconds": round(result.seconds, 3)}
    outcomes = [
        execute(run, reporter, runner=functools.partial(StoreRunner, store=run.store, swept=swept), execution=execution)
        for run in runs
    ]
    failures = [f"job {graph.jobs[job_id].label}: {error}" for job_id, error in result.failures.items()]
    return SweepRun(outcomes, failures)
