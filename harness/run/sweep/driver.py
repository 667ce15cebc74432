"""`bench run` / `bench reproduce` on an executor: build the stage graph, run it, then write the records.

The records are built on the driver exactly as an in-process run builds them (:func:`harness.run.execute.execute`),
with a stage runner that loads every stage from the artifact store: a stage a job of this sweep trained is
reported ``trained`` by its first consumer (``shared`` by the next ones), a stage found in the store
``cache``; a method whose stage is missing (its job failed) gets a failed record.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.progress import Reporter
from harness.plugins.manager import PluginSet
from harness.run.execute import RunOutcome, execute
from harness.run.prepare import PreparedRun
from harness.run.sweep.backend import ExecutorOptions, start_backend
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


def sweep(runs: list[PreparedRun], plugins: PluginSet, executor: str, options: ExecutorOptions, reporter: Reporter,
          *, quiet: bool = True) -> SweepRun:
    backend = start_backend(plugins, executor, options)  # a missing extra is a UsageError, before training
    graph = build_graph(runs, quiet=quiet)
    for run in runs:
        run.release_planning()  # the dry resolutions' models: not held while the jobs train
    result = run_graph(graph, backend, retries=options.retries, reporter=reporter)
    swept = result.trained_keys()
    execution = backend.describe() | {"sweep_seconds": round(result.seconds, 3)}
    outcomes = [execute(run, reporter, runner=lambda env, run=run: StoreRunner(env, run.store, swept=swept),
                        execution=execution) for run in runs]
    failures = [f"job {graph.jobs[job_id].label}: {error}" for job_id, error in result.failures.items()]
    return SweepRun(outcomes, failures)
