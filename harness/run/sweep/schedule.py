"""The driver's loop: submit each stage job once its needs are done, retry a failed job, report the rest.

Executors are plugins (``bench_register_executors``) that register a :class:`Backend` class: something
that starts a job (a pool process, a Ray task, a Slurm job), waits for some to finish and says how each
ended. Dependencies, retries and failure reports are the same for all of them and live here: a job is
submitted when every job it needs has finished, a failed one is submitted again (resuming from its
checkpoint) up to ``retries`` times, and a job that still fails is reported with the jobs that needed it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import ClassVar

from harness.core.progress import Reporter
from harness.run.sweep.graph import JobGraph, JobSpec
from harness.run.sweep.jobs import JobResult


@dataclass(frozen=True)
class ExecutorOptions:
    """The command line's execution choices (``--workers``, ``--per-gpu``, ``--retries``, ...)."""

    workers: int | None = None
    per_gpu: int | None = None
    retries: int = 1
    device: str = "auto"
    threads: int | None = None
    ray_address: str | None = None
    slurm: dict[str, str] = field(default_factory=dict)  # --slurm-opt NAME=VALUE (submitit parameters)
    slurm_local: bool = False
    folder: str = ".cache/jobs"  # logs of Slurm jobs (under --cache-dir)


def wants_cuda(device: str) -> bool:
    """Whether jobs of ``--device`` train on CUDA (``auto``: when this machine has a GPU)."""
    if device == "auto":
        import torch

        return torch.cuda.is_available()
    return device.startswith("cuda")


class Backend(ABC):
    """Starts stage jobs somewhere and reports how they ended. ``capacity``: jobs in flight at most."""

    name: ClassVar[str] = ""
    capacity: int = 1

    @abstractmethod
    def submit(self, spec: JobSpec) -> Hashable:
        """Start the job; returns a handle."""

    @abstractmethod
    def wait(self, handles: list[Hashable]) -> list[tuple[Hashable, JobResult | str]]:
        """Block until at least one of ``handles`` ended; each ended one with its result or its error line."""

    def where(self, handle: Hashable) -> str:
        """Where a job runs, for the driver's notes."""
        return self.name

    def describe(self) -> dict:
        """What records say about the execution."""
        return {"executor": self.name, "workers": self.capacity}

    def close(self) -> None:
        """Release workers (also after an interrupt)."""


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
    reporter.note(f"sweep: {len(pending)} stage job(s) to train on {backend.name} "
                  f"({len(done)} already in the artifact store)")
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
                    reporter.note(f"job {job.label}: {result.origin} in {result.seconds:.1f}s on {result.worker}")
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
