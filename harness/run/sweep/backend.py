"""What an executor plugin is written against: :class:`Backend`, the job it runs and what it reports.

An executor (``bench_register_executors``) registers a :class:`Backend` class: it starts stage jobs somewhere
(a pool process, a Ray task, a Slurm job), each of which calls :func:`harness.run.sweep.worker.run_job` on its
:class:`JobSpec` and returns the :class:`JobResult`; the driver (:mod:`harness.run.sweep.schedule`) decides
what to submit when and gives every job its share of the CPUs (:func:`job_threads`), which ``run_job`` applies.
Everything here is exported by :mod:`harness.api`. Nothing here imports torch (workers read a JobSpec first).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import plugin_code
from harness.run.request import RunRequest


@dataclass(frozen=True)
class JobSpec:
    """What a worker needs to train one stage: the run request, the seed, the method whose plan holds the
    stage and the stage's position in that plan (``Plan.stages()``). Picklable: workers rebuild the stage."""

    request: RunRequest
    seed: int
    method: str
    index: int
    label: str
    resume: bool = False
    quiet: bool = True
    threads: int | None = None  # the job's CPU threads (the driver's job_threads), applied by run_job in the worker
    cwd: str | None = None  # the driver's working directory (relative paths of the request)


@dataclass(frozen=True)
class JobResult:
    """What a worker reports of its job."""

    key: str
    origin: str  # trained, or cache when another process had trained it meanwhile
    seconds: float
    resumed_from_epoch: int
    worker: str  # host:pid
    threads: int = 0  # torch's CPU threads in the job (0: not said)


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


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity, where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def job_threads(options: ExecutorOptions, capacity: int) -> int:
    """The CPU threads of one job: ``--threads``, else this machine's CPUs divided among the ``capacity`` jobs
    an executor runs at once (an executor that sends jobs elsewhere may replace it with what its jobs ask for)."""
    return options.threads or max(1, cpu_count() // max(1, capacity))


def wants_cuda(device: str) -> bool:
    """Whether jobs of ``--device`` train on CUDA (``auto``: when this machine has a GPU)."""
    if device == "auto":
        import torch

        return torch.cuda.is_available()
    return device.startswith("cuda")


class Backend(ABC):
    """Starts stage jobs somewhere and reports how they ended. ``capacity``: jobs in flight at most."""

    name: str = ""  # a class attribute of each executor (GuardedBackend takes the one it wraps)
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
        """Release what the backend started (worker processes, a pool, a cluster connection): the driver calls it
        once at the end of every sweep, after success, failure or an interrupt."""

    @classmethod
    def check(cls, options: ExecutorOptions) -> None:
        """Refuse options this executor cannot work with (a UsageError), without starting anything: called
        before a run is prepared, by real runs and ``--dry-run`` alike. The default accepts everything."""


class GuardedBackend(Backend):
    """An executor plugin's backend whose every call is plugin code: an exception from it (not already a one-line
    :class:`~harness.core.errors.BenchError`) is one line naming the plugin, the executor and the call."""

    def __init__(self, inner: Backend, plugin: str) -> None:
        self.inner, self.plugin = inner, plugin
        self.name = inner.name
        self.capacity = inner.capacity

    def _call(self, what: str, *args: Any) -> Any:
        with plugin_code(f"executor '{self.name}'.{what}()", self.plugin):
            return getattr(self.inner, what)(*args)

    def submit(self, spec: JobSpec) -> Hashable:
        return self._call("submit", spec)

    def wait(self, handles: list[Hashable]) -> list[tuple[Hashable, JobResult | str]]:
        return self._call("wait", handles)

    def where(self, handle: Hashable) -> str:
        return self._call("where", handle)

    def describe(self) -> dict:
        return self._call("describe")

    def close(self) -> None:
        self._call("close")


def start_backend(plugins: Any, executor: str, options: ExecutorOptions) -> Backend:
    """The executor ``executor``'s backend (its check first), its calls guarded (:class:`GuardedBackend`)."""
    entry = plugins.executors.resolve(executor).entry
    check_executor(plugins, executor, options)
    with plugin_code(f"executor '{executor}' (its constructor)", entry.plugin):
        backend = entry.obj(options)
    return GuardedBackend(backend, entry.plugin)


def check_executor(plugins: Any, executor: str, options: ExecutorOptions) -> None:
    """The executor's name resolved and its own :meth:`Backend.check` of ``options`` (dry runs call this too)."""
    entry = plugins.executors.resolve(executor).entry
    with plugin_code(f"executor '{executor}'.check()", entry.plugin):
        entry.obj.check(options)
