"""The entry point of every stage job in its worker, :func:`run_job`: the job's CPU share first, then the job.

Every executor's worker (a pool process, a Ray task, a Slurm job, or the driver's own process) calls
:func:`run_job`. The job's thread count (``JobSpec.threads``, set by the driver: ``--threads``, else this
machine's CPUs divided by the jobs the executor runs at once) is applied here, by the harness, not by the
executor: the thread variables of the numerical libraries (:data:`THREAD_VARIABLES`) before torch is first
imported, so that a new process's thread pools start at that size, and ``torch.set_num_threads``. An executor
that starts N workers on one machine cannot oversubscribe its cores by leaving threads alone. In a process
that had torch already (an executor that runs jobs in the driver), the count and the variables are restored
after the job.

Jobs of one process run one at a time: torch's random state, its thread count and the thread variables are
the process's, so two jobs running at once in threads of one process (an executor built on a thread pool)
would draw from one random stream and train other numbers than they do alone. :func:`run_job` holds a
process-wide lock: a second job started while one runs waits for it, and the process says so once (jobs in
parallel need processes).

This module imports nothing heavy, and neither does unpickling a :class:`~harness.run.sweep.backend.JobSpec`:
a new worker process has not loaded torch when the job's share is applied.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.run.sweep.backend import JobResult, JobSpec

#: what the OpenMP, MKL and OpenBLAS thread pools (torch, numpy, scikit-learn) start with in a new process
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextmanager
def job_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` CPU threads (None: as the process is)."""
    if not threads:
        yield
        return
    loaded = sys.modules.get("torch")
    saved = ({v: os.environ.get(v) for v in THREAD_VARIABLES}, loaded.get_num_threads() if loaded else 0)
    os.environ.update({v: str(threads) for v in THREAD_VARIABLES})
    import torch

    torch.set_num_threads(threads)
    try:
        yield
    finally:
        if loaded is not None:  # the process had torch before the job (the driver's, say): leave it as it was
            for variable, value in saved[0].items():
                if value is None:
                    os.environ.pop(variable, None)
                else:
                    os.environ[variable] = value
            torch.set_num_threads(saved[1])


#: held while a job runs in this process (see the module's docstring)
_ONE_JOB = threading.Lock()
_WARNED: list[bool] = []


def _after_fork() -> None:
    """A forked child runs no job yet, whatever its parent's threads were doing."""
    global _ONE_JOB
    _ONE_JOB = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork)


def _one_at_a_time() -> None:
    """Take :data:`_ONE_JOB`; when another job holds it (two jobs at once in one process), say so once, then wait."""
    if _ONE_JOB.acquire(blocking=False):
        return
    if not _WARNED:
        _WARNED.append(True)
        print(
            f"bench: warning: two stage jobs were started at once in one process (pid {os.getpid()}): torch's "
            "random state and thread count are per process, so they run one after the other here; an executor "
            "runs jobs in parallel in processes (docs/plugins/executor.md)",
            file=sys.stderr,
            flush=True,
        )
    _ONE_JOB.acquire()


def run_job(spec: JobSpec) -> JobResult:
    """Train the stage of ``spec`` with its thread count (the function every executor runs in its workers),
    one job at a time in a process."""
    _one_at_a_time()
    try:
        with job_threads(spec.threads):
            from harness.run.sweep.jobs import train_job

            return train_job(spec)
    finally:
        _ONE_JOB.release()
