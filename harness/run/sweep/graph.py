"""The stage-job graph of one or more prepared runs: every stage to train, once, with its dependencies.

A dry resolution (:class:`~harness.train.stage.StageRunner` with ``dry=True``) of every (seed, method)
plan names each stage by its key, or, while an input is still to be trained, by its provisional plan key
(computed by the same identity with the input's plan key in place of its weights digest). A stage shared
by several methods (a baseline feeding EncodeNet and ``baseline-matched``, a teacher feeding every KD
student) is one job; stages already in the artifact store are jobs marked ``cached`` and never run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from harness.run.prepare import PreparedRun
from harness.run.recording import FinishedRecords
from harness.run.sweep.backend import JobSpec
from harness.train.stage import TrainedStage


@dataclass
class StageJob:
    """One stage to train. ``id``: its stage key, or its provisional plan key while an input is pending."""

    id: str
    spec: JobSpec
    needs: tuple[str, ...]
    epochs: int
    image_epochs: int
    cached: bool

    @property
    def label(self) -> str:
        return self.spec.label


@dataclass
class JobGraph:
    """Stage jobs in topological order (every job after the jobs it needs)."""

    jobs: dict[str, StageJob] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)  # runs whose dataset is not on disk (dry runs only)

    def todo(self) -> list[StageJob]:
        return [job for job in self.jobs.values() if not job.cached]

    @property
    def image_epochs(self) -> int:
        return sum(job.image_epochs for job in self.todo())

    def layers(self) -> list[list[StageJob]]:
        """The jobs still to train, by depth: a layer needs only jobs of earlier layers (or cached ones)."""
        depth: dict[str, int] = {}
        for job in self.todo():
            depth[job.id] = 1 + max((depth[n] for n in job.needs if n in depth), default=-1)
        out: list[list[StageJob]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
        for job in self.todo():
            out[depth[job.id]].append(job)
        return out

    def dependents(self, job_id: str) -> list[StageJob]:
        """Every job downstream of ``job_id``."""
        found: list[StageJob] = []
        frontier = {job_id}
        for job in self.jobs.values():
            if frontier & set(job.needs):
                found.append(job)
                frontier.add(job.id)
        return found


def trained_needs(node: TrainedStage) -> set[str]:
    """Plan keys of the training stages ``node`` consumes (through stages that train nothing)."""
    out: set[str] = set()
    for up in node.inputs.values():
        if up.stage.trains and up.plan_key:
            out.add(up.plan_key)
        else:
            out |= trained_needs(up)
    return out


def build_graph(runs: list[PreparedRun], *, quiet: bool = True, threads: int | None = None) -> JobGraph:
    """Every training stage of every (run, seed, method) of the runs' plans as a job, shared stages once. A
    run whose data is not on disk (a dry run) is planned on its declared shape and size, as its table is."""
    graph = JobGraph()
    for run in runs:
        req = run.request
        planned_on = run.plan_dataset()  # without the data on disk: its declared shape and size (a dry run)
        images = run.train_images()
        if planned_on is None or images is None:
            graph.unknown.append(f"{req.arch} on {req.dataset}")
            continue
        done = FinishedRecords(req.out) if req.reuse_records or req.resume else None
        # workers train with the engine the driver resolved (``--device auto``, the amp default): it is part of
        # every stage key, and the driver builds the records from the stages under its own keys
        pinned = replace(req, device=str(run.device), amp=run.amp, channels_last=run.channels_last)
        for seed in run.plan.seeds:
            dry = run.dry_runner(seed, planned_on)
            for entry in run.plan.of_seed(seed):
                if done is not None and done.reusable(dry.resolve(entry.plan.deploy, entry.name).key, run):
                    continue  # execute reuses the record: nothing of this (seed, method) is trained again
                for index, stage in enumerate(entry.stages()):
                    node = dry.resolve(stage, entry.name)
                    if not stage.trains or node.plan_key is None or node.plan_key in graph.jobs:
                        continue
                    epochs = stage.epochs(run.recipe)
                    label = f"{stage.label if stage.arch else entry.name + '/' + stage.name} seed {seed}"
                    spec = JobSpec(
                        pinned,
                        seed,
                        entry.name,
                        index,
                        label,
                        resume=req.resume,
                        quiet=quiet,
                        threads=threads,
                        cwd=os.getcwd(),
                    )
                    graph.jobs[node.plan_key] = StageJob(
                        node.plan_key,
                        spec,
                        tuple(sorted(trained_needs(node))),
                        epochs,
                        epochs * images,
                        node.cached and not req.retrain and run.dataset is not None,
                    )
    return graph
