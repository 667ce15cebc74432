"""How much a run will train, and about how long that takes on this device, before anything trains.

A run's plan is walked as a dry run does (nothing trained or loaded): every stage still to train is counted
once (a stage shared by several methods, or already in the artifact store, is not), as image-epochs (one
image through one training step) and as training FLOPs: per image, three forward passes of the stage's
trained model (forward and backward) plus one of each frozen module that takes the images (a teacher).
Without the dataset on disk, its declared size (``bench_register_datasets(..., train_images=...)``) stands
in, and keys (hence cache states) are unknown.

The time is the FLOPs divided by the device's rate: on a CPU, the measured rate of a 1024x1024 matrix
product (fp32, or bf16 under ``--amp``) times :data:`CPU_EFFICIENCY`, the fraction of it the engine reaches on
the small CIFAR networks (``benchmarks/bench_settings.py`` on the 2-core AVX2 machine of this project,
2026-12-01: ResNet-8 at 696 img/s is 45% of the best fp32 2048x2048 matmul rate, ResNet-20 60%, ResNet-56
73%, VGG-8 77%; 0.6 is their middle, so a ResNet-8 plan may take ~25% longer than said, a VGG plan ~20% less).
It is an estimate, stated as one; evaluation and data preparation are not counted. On CUDA no estimate is
given (small networks are launch-bound there, so FLOPs do not predict time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import lru_cache

import torch

from harness.core.progress import Reporter
from harness.models.cost import count_cost
from harness.run.cost import declared_stand_in
from harness.run.prepare import PreparedRun
from harness.run.sweep.estimate import hours
from harness.train.executor import StageRunner
from harness.train.stage import Stage, TrainedStage

CPU_EFFICIENCY = 0.6
LONG_PLAN_SECONDS = 30 * 60  # bench run says so, before training, when a CPU plan is estimated to take longer


@dataclass
class PlannedStage:
    """One stage of one (seed, method) entry, as the dry walk found it."""

    seed: int
    method: str
    stage: Stage
    epochs: int
    state: str  # "train", "cached", "shared" (counted under another entry), "loaded" (trains nothing)
    images: int | None  # training images (None: unknown)
    step_flops: int | None = None  # training FLOPs per image (None: not counted)
    after_upstream: bool = False  # its key is known only once a stage it needs is trained

    @property
    def image_epochs(self) -> int:
        return self.epochs * (self.images or 0) if self.state == "train" else 0

    @property
    def flops(self) -> int:
        return self.image_epochs * (self.step_flops or 0)


@dataclass
class PlanWork:
    """Every stage of a run's plan, and what training them costs."""

    stages: list[PlannedStage] = field(default_factory=list)
    dataset_on_disk: bool = True
    images_declared: bool = False  # the training-image count is the dataset's declared one (not on disk)

    @property
    def image_epochs(self) -> int:
        return sum(s.image_epochs for s in self.stages)

    @property
    def flops(self) -> int:
        return sum(s.flops for s in self.stages)


def step_flops(node: TrainedStage, shape: tuple[int, int, int], device: torch.device) -> int | None:
    """Training FLOPs per image of a resolved (untrained) stage: 3 forward passes of its model plus one of each
    frozen module that takes images (a teacher); None when its model does not take the run's images."""
    total = 0
    try:
        total += 3 * count_cost(node.objective.model, shape, device).flops
    except Exception:  # a model of other inputs (an autoencoder's stacked pairs): not counted
        return None
    for frozen in node.objective.frozen_modules():
        try:
            total += count_cost(frozen, shape, device).flops
        except Exception:  # a frozen module on features (a paraphraser): its cost is small, not counted
            continue
    return total


def plan_work(run: PreparedRun) -> PlanWork:
    """Walk the run's plan as the executor would, without training or loading anything."""
    ds = run.dataset
    work = PlanWork(dataset_on_disk=ds is not None)
    stand_in = None
    if ds is not None:
        images = len(ds.train_labels)
        shape: tuple[int, int, int] | None = (ds.in_chans, ds.input_size, ds.input_size)
    else:  # the dataset's declaration: its size, and a shape-only stand-in that builds the plan's models
        meta = run.plugins.datasets.resolve(run.request.dataset).entry.meta
        declared = meta.get("train_images")
        images = min(declared, run.request.train_subset) if declared and run.request.train_subset else declared
        work.images_declared = images is not None
        stand_in = declared_stand_in(run.plugins, run.request.dataset, run.request.val_split)
        shape = (stand_in.in_chans, stand_in.input_size, stand_in.input_size) if stand_in is not None else None
    flops_of: dict[tuple, int | None] = {}
    for seed in run.plan.seeds:
        runner = run.dry_runner(seed) if ds is not None else None
        if runner is None and stand_in is not None:  # keys of a stand-in: sharing is known, cache states are not
            env = replace(run.env_of(stand_in, seed), reporter=Reporter())
            runner = StageRunner(env, run.store, dry=True)
        counted: set[str] = set()
        for entry in run.plan.of_seed(seed):
            for stage in entry.stages():
                planned = PlannedStage(seed, entry.name, stage, stage.epochs(run.recipe), "train", images)
                work.stages.append(planned)
                if not stage.trains:
                    planned.state = "loaded"
                    continue
                if runner is None:
                    continue
                node = runner.resolve(stage, entry.name)
                ident = node.plan_key or str(id(stage))
                planned.after_upstream = node.key is None and ds is not None
                if node.cached and not run.request.retrain and ds is not None:
                    planned.state = "cached"
                elif ident in counted:
                    planned.state = "shared"
                else:
                    counted.add(ident)
                    what = (stage.name, stage.arch or run.request.arch, entry.name)
                    if what not in flops_of:
                        flops_of[what] = step_flops(node, shape, run.device) if shape else None
                    planned.step_flops = flops_of[what]
    return work


@lru_cache(maxsize=4)
def device_rate(device_type: str, amp: bool) -> float | None:
    """Effective training FLOP/s of this machine (see the module docstring); None on CUDA."""
    if device_type != "cpu":
        return None
    dtype = torch.bfloat16 if amp else torch.float32
    a = torch.randn(1024, 1024, dtype=dtype)
    b = torch.randn(1024, 1024, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * 1024**3 / best * CPU_EFFICIENCY


def estimated_seconds(run: PreparedRun, work: PlanWork) -> float | None:
    """The plan's training time on this device, or None where it cannot be estimated."""
    rate = device_rate(run.device.type, run.amp)
    if rate is None or not work.flops:
        return None
    return work.flops / rate


def long_plan_note(run: PreparedRun) -> str | None:
    """One line when a CPU plan is estimated to train longer than LONG_PLAN_SECONDS: the estimate and how to
    shorten it; None otherwise."""
    work = plan_work(run)
    seconds = estimated_seconds(run, work)
    if seconds is None or seconds <= LONG_PLAN_SECONDS:
        return None
    return (f"this plan trains {work.image_epochs:,} image-epochs, about {hours(seconds)} on this CPU "
            f"(an estimate from its FLOPs); to shorten it: --epochs N, --train-subset N, --recipe smoke, or "
            f"--dry-run to see the plan")
