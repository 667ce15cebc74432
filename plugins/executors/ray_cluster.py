"""The ``ray`` executor: every stage job a Ray task, on an existing cluster (``--ray-address``) or on a local
one started for the sweep.

A task asks for ``--threads`` CPUs (default 1) and, on CUDA, one GPU, or 1/K of one with ``--per-gpu K``
(Ray sets the task's ``CUDA_VISIBLE_DEVICES``). The driver submits a task once the tasks it needs have
finished (so that a failed task can be retried, resuming from its checkpoint; see
:mod:`harness.run.sweep.schedule`). Every node must have bench installed and see ``--cache-dir`` (and the
working directory, for relative paths) on a shared filesystem; records are built on the driver.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import replace

from harness.api import Backend, ExecutorOptions, JobResult, JobSpec, import_extra, run_job, wants_cuda

UNBOUNDED = 1 << 20


class RayCluster(Backend):
    name = "ray"

    def __init__(self, options: ExecutorOptions) -> None:
        ray = import_extra("ray", "ray", "--executor ray", package="Ray")
        self.ray = ray
        self.threads = options.threads or 1
        per_gpu = options.per_gpu or 1
        self.gpus = 1 / per_gpu if wants_cuda(options.device) else 0
        self.started = False
        if not ray.is_initialized():
            if options.ray_address is None:  # a local cluster for this sweep
                cpus = options.workers * self.threads if options.workers else None
                ray.init(num_cpus=cpus, include_dashboard=False, configure_logging=False)
            else:
                ray.init(address=options.ray_address, configure_logging=False)
            self.started = True
        self.capacity = options.workers or UNBOUNDED
        self.address = ray.get_runtime_context().gcs_address
        self.task = ray.remote(run_job).options(num_cpus=self.threads, num_gpus=self.gpus, max_retries=0)

    def submit(self, spec: JobSpec) -> Hashable:
        return self.task.remote(replace(spec, threads=self.threads, cwd=spec.cwd or os.getcwd()))

    def wait(self, handles: list[Hashable]) -> list[tuple[Hashable, JobResult | str]]:
        done, _ = self.ray.wait(handles, num_returns=1)
        ended: list[tuple[Hashable, JobResult | str]] = []
        for ref in done:
            try:
                ended.append((ref, self.ray.get(ref)))
            except self.ray.exceptions.RayError as exc:
                cause = getattr(exc, "cause", None) or exc
                text = str(cause).strip().splitlines()
                ended.append((ref, f"{type(cause).__name__}: {text[-1] if text else ''}"))
        return ended

    def describe(self) -> dict:
        return {"executor": self.name, "cpus_per_task": self.threads, "gpus_per_task": self.gpus,
                "cluster": self.address}

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
