"""The ``slurm`` executor: every stage job a Slurm job, submitted through ``submitit``.

A job asks for ``--threads`` CPUs (default 1) and, on CUDA, one GPU; ``--slurm-opt NAME=VALUE`` passes any
submitit parameter (``slurm_partition=gpu``, ``timeout_min=600``, ``slurm_account=...``). The driver
submits a job once the jobs it needs have finished (see :mod:`harness.run.sweep.schedule`) and must stay
up for the sweep (run it on a login node or as a job itself); logs go to ``<cache-dir>/jobs/<job id>/``.
``--slurm-local`` runs the jobs through submitit's local mode (processes on this machine), for trying
a sweep out and for the tests. Nodes need bench installed and ``--cache-dir`` on a shared filesystem.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Hashable
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.api import (
    COUNT,
    FINITE,
    NON_NEGATIVE_INT,
    POSITIVE,
    Backend,
    ExecutorOptions,
    JobResult,
    JobSpec,
    UsageError,
    import_extra,
    run_job,
    wants_cuda,
)

UNBOUNDED = 1 << 20
POLL_S = 1.0


#: submitit parameters that are counts or sizes (``--slurm-opt NAME=VALUE``) and the values each takes
LIMITS = {
    "timeout_min": COUNT,
    "cpus_per_task": COUNT,
    "nodes": COUNT,
    "tasks_per_node": COUNT,
    "gpus_per_node": NON_NEGATIVE_INT,
    "mem_gb": POSITIVE,
    "slurm_mem_gb": POSITIVE,
}


def parse_value(raw: Any) -> Any:
    """``--slurm-opt``'s text as a number where it is one; a study file's typed value as it is."""
    if not isinstance(raw, str):
        return raw
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def checked_value(name: str, raw: Any) -> Any:
    """``--slurm-opt NAME=VALUE``'s value: a number is finite (and within :data:`LIMITS` for counts)."""
    value = parse_value(raw)
    if isinstance(value, (int, float)):
        LIMITS.get(name, FINITE).check(value, f"--slurm-opt {name}")
    elif name in LIMITS:
        raise UsageError(f"--slurm-opt {name} must be {LIMITS[name].describe()}, got {raw!r}")
    return value


class SlurmJobs(Backend):
    name = "slurm"

    def __init__(self, options: ExecutorOptions) -> None:
        submitit = import_extra("submitit", "slurm", "--executor slurm")
        self.check(options)
        self.local = options.slurm_local
        self.threads = options.threads or 1
        self.executor = submitit.AutoExecutor(
            folder=Path(options.folder) / "%j", cluster="local" if self.local else "slurm"
        )
        params: dict[str, Any] = {
            "timeout_min": 7 * 24 * 60,
            "nodes": 1,
            "tasks_per_node": 1,
            "cpus_per_task": self.threads,
            "gpus_per_node": 1 if wants_cuda(options.device) else 0,
            "name": "bench-stage",
        }
        params.update({k: checked_value(k, v) for k, v in options.slurm.items()})
        try:
            self.executor.update_parameters(**params)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--slurm-opt: {exc}") from None
        self.capacity = options.workers or UNBOUNDED
        self.failed_exception = submitit.core.utils.UncompletedJobError

    @classmethod
    def check(cls, options: ExecutorOptions) -> None:
        """submitit is installed, Slurm is there (unless ``--slurm-local``), numeric ``--slurm-opt`` are sound."""
        import_extra("submitit", "slurm", "--executor slurm")
        if not options.slurm_local and shutil.which("sbatch") is None:
            raise UsageError(
                "--executor slurm: no Slurm on this machine (sbatch not found); run the driver on a "
                "Slurm login node, or add --slurm-local to run the jobs through submitit's local mode"
            )
        for name, raw in options.slurm.items():
            checked_value(name, raw)

    def submit(self, spec: JobSpec) -> Hashable:
        return self.executor.submit(run_job, replace(spec, threads=self.threads, cwd=spec.cwd or os.getcwd()))

    def where(self, handle: Hashable) -> str:
        return f"{'local ' if self.local else ''}slurm job {getattr(handle, 'job_id', '?')}"

    def wait(self, handles: list[Hashable]) -> list[tuple[Hashable, JobResult | str]]:
        jobs: list[Any] = list(handles)  # submitit Jobs (untyped)
        while True:
            done = [job for job in jobs if job.done()]
            if done:
                break
            time.sleep(POLL_S)
        ended: list[tuple[Hashable, JobResult | str]] = []
        for job in done:
            try:
                ended.append((job, job.result()))
            except Exception as exc:  # submitit's errors carry the job's traceback: its last line says what
                lines = [line for line in str(exc).strip().splitlines() if line.strip()]
                ended.append((job, f"{self.where(job)}: {lines[-1].strip() if lines else type(exc).__name__}"))
        return ended

    def describe(self) -> dict:
        return {"executor": self.name, "local": self.local, "cpus_per_task": self.threads}
