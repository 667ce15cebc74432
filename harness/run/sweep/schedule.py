"""The driver's loop: submit each stage job once its needs are done, retry a failed job, report the rest.

Executors are plugins (``bench_register_executors``) that register a
:class:`~harness.run.sweep.backend.Backend` class: something that starts a job (a pool process, a Ray task, a
Slurm job), waits for some to finish and says how each ended. Dependencies, retries and failure reports are the same for
all of them and live here: a job is submitted when every job it needs has finished, a failed one is submitted again
(resuming from its checkpoint) up to ``retries`` times, and a job that still fails is reported with the jobs that needed
it.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field, replace

from harness.core.progress import Reporter
from harness.run.sweep.backend import Backend, JobResult
from harness.run.sweep.graph import JobGraph


@dataclass
class SweepOutcome:
    results: dict[str, JobResult] = field(default_factory=dict)  # job id -> result
    failures: dict[str, str] = field(default_factory=dict)  # job id -> error line
    seconds: float = 0.0

    def trained_keys(self) -> set[str]:
        return {r.key for r in self.results.values() if r.origin == "trained"}


def run_graph(graph: JobGraph, backend: Backend, *, retries: int, reporter: Reporter) -> SweepOutcome:
    """Run every job of ``graph`` that is not cached on ``backend``."""
    t0 = time.perf_counter()
    outcome = SweepOutcome()
    pending = {job.id: job for job in graph.todo()}
    done = {job.id for job in graph.jobs.values() if job.cached}
    attempts: dict[str, int] = {}
    running: dict[Hashable, str] = {}
    reporter.note(
        f"sweep: {len(pending)} stage job(s) to train on {backend.name} ({len(done)} already in the artifact store)"
    )
    try:
        while pending or running:
            for job in [j for j in pending.values() if all(n in done or n not in graph.jobs for n in j.needs)]:
                if len(running) >= backend.capacity:
                    break
                attempts[job.id] = attempts.get(job.id, 0) + 1
                spec = job.spec if attempts[job.id] == 1 else replace(job.spec, resume=True)
                handle = backend.submit(spec)
                running[handle] = job.id
                del pending[job.id]
                again = f" (attempt {attempts[job.id]}, resuming)" if attempts[job.id] > 1 else ""
                reporter.note(f"job {job.label}: started on {backend.where(handle)}{again}")
            if not running:
                break  # what is left needs a job that failed (reported below)
            for handle, result in backend.wait(list(running)):
                job = graph.jobs[running.pop(handle)]
                if isinstance(result, JobResult):
                    done.add(job.id)
                    outcome.results[job.id] = result
                    threads = f", {result.threads} thread{'s' if result.threads > 1 else ''}" if result.threads else ""
                    reporter.note(
                        f"job {job.label}: {result.origin} in {result.seconds:.1f}s on {result.worker}{threads}"
                    )
                elif attempts[job.id] <= retries:
                    reporter.note(f"job {job.label} failed: {result}; retrying")
                    pending[job.id] = job
                else:
                    outcome.failures[job.id] = result
                    reporter.note(f"job {job.label} failed: {result}")
                    for later in graph.dependents(job.id):
                        if pending.pop(later.id, None) is not None:
                            outcome.failures[later.id] = f"not run: it needs {job.label}, which failed"
    finally:
        backend.close()
    outcome.seconds = time.perf_counter() - t0
    return outcome
