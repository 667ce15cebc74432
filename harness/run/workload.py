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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from torch import nn

from harness.models.cost import count_cost
from harness.run.prepare import PreparedRun
from harness.run.sweep.estimate import hours
from harness.train.stage import Stage, TrainedStage

CPU_EFFICIENCY = 0.6
LONG_PLAN_SECONDS = 30 * 60  # bench run says so, before training, when a CPU plan is estimated to take longer
DAY_SECONDS = 24 * 3600  # beyond this, the advice is a GPU (or several machines), or a much smaller plan


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


def step_flops(
    node: TrainedStage,
    shape: tuple[int, int, int],
    device: torch.device,
    forward: Callable[[nn.Module, tuple[int, int, int], torch.device], int] | None = None,
) -> int | None:
    """Training FLOPs per image of a resolved (untrained) stage: 3 forward passes of its model plus one of each
    frozen module that takes images (a teacher); None when its model does not take the run's images.
    ``forward(module, shape, device)`` counts one forward pass (default: :func:`count_cost`'s FLOPs)."""
    forward = forward or (lambda module, shape, device: count_cost(module, shape, device).flops)
    total = 0
    try:
        total += 3 * forward(node.objective.model, shape, device)
    except Exception:  # a model of other inputs (an autoencoder's stacked pairs): not counted
        return None
    for frozen in node.objective.frozen_modules():
        try:
            total += forward(frozen, shape, device)
        except Exception:  # a frozen module on features (a paraphraser): its cost is small, not counted
            continue
    return total


def plan_work(run: PreparedRun, counted: set[str] | None = None) -> PlanWork:
    """Walk the run's plan as the executor would, without training or loading anything. ``counted``: plan
    keys of stages already counted (by another run of the same invocation, e.g. a teacher two runs share):
    they are ``shared`` here, as the stage graph has them once; the stages counted here are added to it."""
    ds = run.dataset
    work = PlanWork(dataset_on_disk=ds is not None)
    planned_on = run.plan_dataset()  # the data, or a shape-only stand-in that builds the plan's models
    images = run.train_images()  # without the data on disk: the declared count
    work.images_declared = ds is None and images is not None
    shape = (planned_on.in_chans, planned_on.input_size, planned_on.input_size) if planned_on is not None else None
    counted = set() if counted is None else counted
    flops_of: dict[tuple, int | None] = {}
    for seed in run.plan.seeds:
        runner = run.dry_runner(seed, planned_on) if planned_on is not None else None
        for entry in run.plan.of_seed(seed):
            for stage in entry.stages():
                planned = PlannedStage(seed, entry.name, stage, stage.epochs(run.recipe), "train", images)
                work.stages.append(planned)
                if not stage.trains:
                    planned.state = "loaded"
                elif runner is not None:
                    _account(planned, runner.resolve(stage, entry.name), run, counted, flops_of, shape)
    return work


def _account(
    planned: PlannedStage,
    node: TrainedStage,
    run: PreparedRun,
    counted: set[str],
    flops_of: dict[tuple, int | None],
    shape: tuple[int, int, int] | None,
) -> None:
    """A training stage's state (cached, shared or to train) and, the first time it is to train, its cost."""
    on_disk = run.dataset is not None  # keys of a stand-in: sharing is known, cache states are not
    planned.after_upstream = node.key is None and on_disk
    ident = node.plan_key or str(id(planned.stage))
    if node.cached and not run.request.retrain and on_disk:
        planned.state = "cached"
    elif ident in counted:
        planned.state = "shared"
    else:
        counted.add(ident)
        what = (planned.stage.name, planned.stage.arch or run.request.arch, planned.method)
        if what not in flops_of:
            flops_of[what] = step_flops(node, shape, run.device, run.planning.forward_flops) if shape else None
        planned.step_flops = flops_of[what]


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
    note = (
        f"this plan trains {work.image_epochs:,} image-epochs, about {hours(seconds)} on this CPU "
        f"(an estimate from its FLOPs); to shorten it: --epochs N, --train-subset N, --recipe smoke, or "
        f"--dry-run to see the plan"
    )
    advice = long_plan_advice(seconds)
    return f"{note}. {advice}" if advice else note


def long_plan_advice(seconds: float) -> str | None:
    """For a CPU plan estimated to take more than a day: the two honest routes (a GPU or several machines,
    or a much smaller plan on this CPU); None for a shorter plan."""
    if seconds <= DAY_SECONDS:
        return None
    return (
        "More than a day on this CPU is not a plan to run here. On a GPU: the same command with --device cuda, "
        "or its stages spread over machines with --executor ray or --executor slurm (docs/scaling-out.md). "
        "On this CPU: a smaller plan: a small architecture (--arch resnet8 or resnet20), --recipe smoke "
        "(3 epochs), a subset (--train-subset N --test-subset N), fewer --seeds, or the bundled "
        "--dataset cifar10-mini"
    )
