"""One stage job, run in a worker (a pool process, a Ray task, a Slurm job), and the driver's side of it.

A worker rebuilds its stage from the job's spec (the run request, seed, method and the stage's place in
the method's plan), loads every stage it needs from the shared artifact store (their own jobs trained
them) and trains (or loads, if meanwhile in the store) only its own stage, under the stage's lock. The
driver then builds the records from the store with the same runner in load-only mode
(:class:`StoreRunner` without a target), exactly as an in-process run would.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import replace

import torch
from rich.console import Console

from harness.core.errors import BenchError, PluginFailed
from harness.core.progress import Reporter, RichReporter, set_quiet
from harness.run.prepare import PreparedRun, prepare
from harness.run.restarts import RestartWarningRunner
from harness.run.sweep.backend import JobResult, JobSpec
from harness.train.artifacts import ArtifactStore
from harness.train.env import RunEnv
from harness.train.executor import StageWork
from harness.train.stage import Stage, TrainedStage


class StageNotTrained(BenchError):
    """A stage a worker or the driver needs is not in the artifact store: its job failed (exit 1)."""


class StoreRunner(RestartWarningRunner):
    """A stage runner that trains at most one stage, ``target``; every other training stage it meets must
    already be in the artifact store and is loaded from it. ``swept``: keys that jobs of this sweep trained,
    each reported as ``trained`` by the first consumer (then ``shared``), as an in-process run reports it."""

    def __init__(
        self,
        env: RunEnv,
        store: ArtifactStore,
        *,
        target: Stage | None = None,
        resume: bool = False,
        retrain: bool = False,
        swept: set[str] | None = None,
    ) -> None:
        super().__init__(env, store, resume=resume, retrain=retrain)
        self.target = target
        self.swept = swept if swept is not None else set()

    def obtain(self, work: StageWork) -> TrainedStage:
        """The target through the usual load-or-train; every other stage from the store (or StageNotTrained)."""
        if work.stage is self.target:
            return self.load_or_train(work)
        origin = "trained" if work.key in self.swept else "cache"
        node = self.load(work, origin)
        if node is None:
            raise StageNotTrained(f"stage {work.label} is not in the artifact store ({work.key}): its job failed")
        self.swept.discard(work.key)
        return node


_PREPARED: dict[str, PreparedRun] = {}


def _prepared(spec: JobSpec) -> PreparedRun:
    """The prepared run of a request, once per worker process (plugins, dataset, validation)."""
    from harness.plugins.manager import get_plugins

    request = replace(spec.request, loggers=[])  # the driver logs (its loggers' extras need not be here)
    ident = repr(request)
    if ident not in _PREPARED:
        _PREPARED[ident] = prepare(request, get_plugins(), Reporter())
    return _PREPARED[ident]


def train_job(spec: JobSpec) -> JobResult:
    """Train the stage of ``spec``, with the thread count :func:`harness.run.sweep.worker.run_job` (the
    executors' entry point) applied."""
    set_quiet(spec.quiet)
    if spec.cwd and os.path.isdir(spec.cwd):
        os.chdir(spec.cwd)  # the request's relative paths are the driver's
    run = _prepared(spec)
    run.release_planning()  # what validating it resolved: not held while the job trains
    reporter = Reporter() if spec.quiet else RichReporter(Console(stderr=True))
    env = run.env(spec.seed, reporter)
    stage = run.plan.find(spec.seed, spec.method).stages()[spec.index]
    runner = StoreRunner(env, run.store, target=stage, resume=spec.resume, retrain=spec.request.retrain)
    t0 = time.perf_counter()
    try:
        node = runner.resolve(stage, spec.method)
    except PluginFailed as exc:  # the job's line names the plugin, as an in-process run's does
        run.plugins.claim(exc, spec.method)
        raise
    assert node.key is not None
    return JobResult(
        node.key,
        node.origin,
        time.perf_counter() - t0,
        int(node.info.get("resumed_from_epoch", 0)),
        f"{socket.gethostname()}:{os.getpid()}",
        torch.get_num_threads(),
    )
