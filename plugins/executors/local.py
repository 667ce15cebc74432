"""The ``local`` executor: a pool of worker processes on this machine.

``--workers N`` processes (spawned, so that no thread pool or CUDA context is inherited), each with its
share of the CPU threads (all of them divided by N, or ``--threads``: ``harness.api.job_threads``, applied by
``run_job`` in the worker); or, with ``--per-gpu K``, K workers
per visible GPU, each seeing only its GPU (``CUDA_VISIBLE_DEVICES``). A worker that dies (killed, out of
memory) fails its job, which the driver may retry, and is replaced by a new process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Hashable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from harness.api import Backend, BenchError, ExecutorOptions, JobResult, JobSpec, UsageError, job_threads, run_job


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def worker_main(conn: Connection, env: dict[str, str], threads: int) -> None:
    """A pool process: take job specs from ``conn`` and answer ("ok", result) or ("error", line)."""
    os.environ.update(env)
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return
        if spec is None:
            return
        try:
            answer: tuple[str, Any] = ("ok", run_job(replace(spec, threads=spec.threads or threads)))
        except KeyboardInterrupt:
            return
        except BaseException as exc:
            answer = ("error", str(exc) if isinstance(exc, BenchError) else one_line(exc))
        conn.send(answer)


@dataclass(eq=False)
class Worker:
    slot: int
    env: dict[str, str]
    process: Any
    conn: Connection

    def describe(self) -> str:
        gpu = self.env.get("CUDA_VISIBLE_DEVICES")
        return f"worker {self.slot} (pid {self.process.pid}{', GPU ' + gpu if gpu is not None else ''})"


def visible_gpus() -> list[str]:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


class LocalPool(Backend):
    name = "local"

    def __init__(self, options: ExecutorOptions) -> None:
        if options.per_gpu is not None:
            if options.per_gpu < 1:
                raise UsageError(f"--per-gpu must be at least 1, got {options.per_gpu}")
            gpus = visible_gpus()
            if not gpus:
                raise UsageError("--per-gpu was given but no GPU is visible; use --workers N on a CPU")
            self.slots = [{"CUDA_VISIBLE_DEVICES": g} for g in gpus for _ in range(options.per_gpu)]
        else:
            workers = options.workers or 1
            if workers < 1:
                raise UsageError(f"--workers must be at least 1, got {workers}")
            self.slots = [{} for _ in range(workers)]
        self.capacity = len(self.slots)
        self.threads = job_threads(options, self.capacity)
        self.context = mp.get_context("spawn")
        self.workers: list[Worker | None] = [None] * self.capacity
        self.busy: set[int] = set()

    def _start(self, slot: int) -> Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(
            target=worker_main, args=(theirs, self.slots[slot], self.threads), name=f"bench-worker-{slot}", daemon=True
        )
        process.start()
        theirs.close()
        worker = Worker(slot, self.slots[slot], process, ours)
        self.workers[slot] = worker
        return worker

    def submit(self, spec: JobSpec) -> Hashable:
        slot = next(i for i in range(self.capacity) if i not in self.busy)
        worker = self.workers[slot]
        if worker is None or not worker.process.is_alive():
            worker = self._start(slot)
        worker.conn.send(spec)
        self.busy.add(slot)
        return worker

    def where(self, handle: Hashable) -> str:
        assert isinstance(handle, Worker)
        return handle.describe()

    def wait(self, handles: list[Hashable]) -> list[tuple[Hashable, JobResult | str]]:
        workers = [h for h in handles if isinstance(h, Worker)]
        ready = wait([w.conn for w in workers] + [w.process.sentinel for w in workers])
        ended: list[tuple[Hashable, JobResult | str]] = []
        for worker in workers:
            if worker.conn not in ready and worker.process.sentinel not in ready:
                continue
            try:
                status, value = worker.conn.recv()
                ended.append((worker, value if status == "ok" else str(value)))
                if status != "ok":  # a failed job may leave its process unusable (a sticky CUDA error): replace it
                    self._retire(worker)
            except (EOFError, OSError):  # the process died with its job
                worker.process.join(timeout=5)
                code = worker.process.exitcode
                how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit {code}"
                ended.append((worker, f"{worker.describe()} died ({how})"))
                self.workers[worker.slot] = None
            self.busy.discard(worker.slot)
        return ended

    def describe(self) -> dict:
        return {
            "executor": self.name,
            "workers": self.capacity,
            "threads_per_worker": self.threads,
            "gpus": sorted({s["CUDA_VISIBLE_DEVICES"] for s in self.slots if s}),
        }

    def _retire(self, worker: Worker) -> None:
        """Stop ``worker`` (asked to, then terminated); its slot gets a new process at its next job."""
        if worker.process.is_alive():
            try:
                worker.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(timeout=5)
        if self.workers[worker.slot] is worker:
            self.workers[worker.slot] = None

    def close(self) -> None:
        for worker in self.workers:
            if worker is not None:
                self._retire(worker)
        self.workers = [None] * self.capacity
