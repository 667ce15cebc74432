"""The training engine: one loop for every method and stage (:func:`fit`).

An *objective* is an ``nn.Module`` whose ``forward(images, labels)`` returns a :class:`StepOutput` (logits
and named losses). :func:`fit` is a loop over named parts: the learning rate of the epoch (:func:`lr_factor`),
the objective's notice that the epoch begins (:func:`start_epoch`, for losses that depend on it), the epoch's steps
(:func:`train_epoch`, each a :class:`~harness.train.step.Step`: AMP, distributed, the divergence guard of
:mod:`harness.train.divergence`), the epoch's evaluation (:func:`evaluate_epoch`) and its checkpoint
(:mod:`harness.train.checkpoints`), so that an interrupted stage resumes exactly where it stopped. Nothing in the loop
serves tests: they inject faults from outside (a stream or a step that fails).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from harness.core.errors import BenchError
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.data.pipeline import TrainStream
from harness.train.checkpoints import Progress, resume_state, save_checkpoint
from harness.train.distributed import World
from harness.train.averaging import Lookahead
from harness.train.divergence import DivergenceGuard
from harness.train.step import EpochTally, Step

#: torch.compile modes (``--compile MODE``)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX): bf16 autocast then speeds training up;
    without them torch emulates it through fp32, slower than fp32 itself."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check() for check in checks if check is not None)


def compiled(module: torch.nn.Module, mode: str | None) -> torch.nn.Module:
    """``module`` compiled (``torch.compile``, ``mode``), or itself when ``mode`` is None. The compiled wrapper
    shares the module's parameters and is only called: weights, checkpoints and artifacts use the module."""
    # torch.compile of a module is a module (an OptimizedModule); its type hints say only a callable
    return module if mode is None else cast(torch.nn.Module, torch.compile(module, mode=mode, dynamic=False))


@dataclass
class FitResult:
    history: list[dict]
    seconds: float
    resumed_from_epoch: int = 0
    best_state: dict | None = None  # weights at the selected epoch when selection is not "last"


#: airbench's schedule (airbench94, ``get_lr``): over the first 23% of the steps the factor rises linearly from
#: 0.2 to 1, then falls linearly to 0.07 at the last step
AIRBENCH_SCHEDULE = (0.23, 0.2, 0.07)


def airbench_factor(step: int, total: int) -> float:
    """The learning-rate multiplier of 0-based ``step`` of ``total`` under :data:`AIRBENCH_SCHEDULE` (set at
    every step, as airbench's ``LambdaLR`` does)."""
    peak_at, start, end = AIRBENCH_SCHEDULE
    warmup = int(total * peak_at)
    if step < warmup:
        frac = step / warmup
        return start * (1 - frac) + frac
    frac = (step - warmup) / max(1, total - warmup)
    return (1 - frac) + end * frac


def per_step(recipe: Recipe) -> bool:
    """Whether the recipe's learning rate changes at every step (``airbench``) rather than every epoch."""
    return recipe.schedule == "airbench"


def lr_factor(recipe: Recipe, epoch: int) -> float:
    """Learning-rate multiplier for 0-based ``epoch`` (constant within an epoch, as the references do; a
    per-step schedule: the factor of the epoch's first step, counting 100 steps an epoch)."""
    if per_step(recipe):
        return airbench_factor(epoch * 100, recipe.epochs * 100)
    if recipe.warmup_epochs and epoch < recipe.warmup_epochs:
        return (epoch + 1) / recipe.warmup_epochs
    if recipe.schedule == "multistep":
        return recipe.gamma ** sum(epoch >= m for m in recipe.milestones)
    if recipe.schedule == "cosine":
        span = max(1, recipe.epochs - recipe.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * (epoch - recipe.warmup_epochs) / span))
    return 1.0


def schedule_text(recipe: Recipe) -> str:
    """The learning rate of every epoch, in runs: ``epochs 1-2 lr 0.05, epoch 3 lr 0.0005``."""
    runs: list[tuple[int, int, float]] = []
    for epoch in range(recipe.epochs):
        lr = recipe.lr * lr_factor(recipe, epoch)
        if runs and math.isclose(runs[-1][2], lr):
            runs[-1] = (runs[-1][0], epoch + 1, lr)
        else:
            runs.append((epoch + 1, epoch + 1, lr))
    return ", ".join((f"epoch {a}" if a == b else f"epochs {a}-{b}") + f" lr {lr:.4g}" for a, b, lr in runs)


def make_optimizer(params: Iterable, recipe: Recipe, scaled: Iterable = ()) -> torch.optim.SGD:
    """SGD of ``params``; those among them in ``scaled`` (BatchNorm parameters, under a recipe's
    ``norm_lr_scale``) form a second group at ``norm_lr_scale`` times the learning rate and the weight decay
    divided by it, so that the decay per step is the same (airbench's ``bias_scaler``)."""
    params = list(params)
    marked = {id(p) for p in scaled} if recipe.norm_lr_scale != 1 else set()
    if not marked:
        return torch.optim.SGD(
            params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=recipe.nesterov
        )
    scale = recipe.norm_lr_scale  # the unscaled group first: history rows show its learning rate
    groups: list[dict[str, Any]] = [
        {"params": [p for p in params if id(p) not in marked]},
        {
            "params": [p for p in params if id(p) in marked],
            "lr": recipe.lr * scale,
            "weight_decay": recipe.weight_decay / scale,
        },
    ]
    return torch.optim.SGD(
        [g for g in groups if g["params"]],
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )


def norm_params(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``module``'s BatchNorm layers (what ``norm_lr_scale`` scales)."""
    return [p for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()]


def set_step_lr(optimizer: torch.optim.Optimizer, base_lrs: list[float], factor: float) -> None:
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * factor


def set_lr(optimizer: torch.optim.Optimizer, base_lrs: list[float], recipe: Recipe, epoch: int) -> None:
    """Each parameter group's learning rate for 0-based ``epoch``: its base rate times :func:`lr_factor`."""
    factor = lr_factor(recipe, epoch)
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * factor


def start_epoch(objective: nn.Module, epoch: int, epochs: int) -> None:
    """Tell the objective that 0-based ``epoch`` of ``epochs`` begins (:meth:`Objective.start_epoch
    <harness.train.objective.Objective.start_epoch>`); a plain module without the method is left alone."""
    hook = getattr(objective, "start_epoch", None)
    if hook is not None:
        hook(epoch, epochs)


def train_epoch(
    objective: nn.Module,
    stream: TrainStream,
    epoch: int,
    step: Step,
    reporter: Reporter,
    hooks: BatchHooks | None = None,
) -> dict[str, Any]:
    """Train 0-based ``epoch``: every batch of ``stream`` through ``step``; the epoch's history row (before its
    evaluation). ``hooks``: what a recipe does around each step (a per-step schedule, weight averaging)."""
    objective.train()
    tally = EpochTally(step.device, time.perf_counter())
    batches = stream.epoch(epoch, indexed=True) if getattr(objective, "takes_indices", False) else stream.epoch(epoch)
    for b, batch in enumerate(batches):
        began = time.perf_counter()
        if hooks is not None:
            hooks.before(epoch, b)
        result = step(epoch, b, *batch)
        if hooks is not None:
            hooks.after(epoch, b)
        if step.warming_up():  # a compiled step's first calls compile it: timed apart from the throughput
            tally.warm_up(began, result.n)
        tally.add(result)
        reporter.advance_batch(tally.seen, tally.sums, tally.correct)
    if hooks is not None:
        hooks.end_epoch(epoch)
    if step.device.type == "cuda":
        torch.cuda.synchronize(step.device)
    step.guard.flush(epoch)
    return tally.row(epoch, step.optimizer.param_groups[0]["lr"], time.perf_counter() - tally.start)


class BatchHooks:
    """What a recipe does around the steps of :func:`train_epoch`: a per-step learning rate (``airbench``
    schedule) and weight averaging (``averaging = "lookahead"``, :class:`~harness.train.averaging.Lookahead`).
    None of it is made for a recipe that uses neither, so their training is the loop it always was."""

    def __init__(
        self, recipe: Recipe, optimizer: torch.optim.Optimizer, base_lrs: list[float], batches: int, averaged: nn.Module
    ) -> None:
        self.recipe, self.optimizer, self.base_lrs, self.batches = recipe, optimizer, base_lrs, batches
        self.total = recipe.epochs * batches
        self.lookahead = Lookahead(averaged, self.total) if recipe.averaging == "lookahead" else None

    @staticmethod
    def wanted(recipe: Recipe) -> bool:
        return per_step(recipe) or recipe.averaging != "none"

    def before(self, epoch: int, b: int) -> None:
        if per_step(self.recipe):
            set_step_lr(self.optimizer, self.base_lrs, airbench_factor(epoch * self.batches + b, self.total))

    def after(self, epoch: int, b: int) -> None:
        if self.lookahead is not None:
            self.lookahead.step(epoch * self.batches + b + 1)

    def end_epoch(self, epoch: int) -> None:
        if self.lookahead is not None:
            self.lookahead.synchronise((epoch + 1) * self.batches, last=epoch + 1 == self.recipe.epochs)


def evaluate_epoch(
    objective: nn.Module,
    row: dict[str, Any],
    epoch: int,
    evaluate: Callable[[], dict[str, float]],
    guard: DivergenceGuard,
) -> None:
    """Add ``evaluate()``'s numbers to the epoch's ``row``; a non-finite one stops the stage (before the epoch's
    checkpoint: a resumed run replays it)."""
    objective.eval()
    evaluated = evaluate()
    guard.evaluation(epoch, evaluated)
    row.update(evaluated)


def fit(
    objective: nn.Module,
    stream: TrainStream,
    recipe: Recipe,
    *,
    evaluate: Callable[[], dict[str, float]],
    label: str,
    reporter: Reporter,
    device: torch.device,
    params: Iterable | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    amp: bool = False,
    select: Callable[[dict], float] | None = None,
    state_to_keep: Callable[[], dict] | None = None,
    world: World | None = None,
    forward: Callable[..., object] | None = None,
    warmup_batches: int = 0,
    evaluate_last: Callable[[], dict[str, float]] | None = None,
    lr_option: str = "--lr",
) -> FitResult:
    """Train ``objective`` for ``recipe.epochs`` epochs on ``stream``.

    ``forward`` is what each step calls (default the objective itself; a compiled wrapper of it under
    ``--compile``: the objective's own weights are the ones trained and saved). The first ``warmup_batches``
    batches this call trains (a compiled step's compilation) are timed apart: the epoch's row says
    ``warmup_seconds``, and its ``images_per_s`` counts the other batches only.

    ``evaluate()`` is called after every epoch and its numbers join the epoch's history row. When ``select``
    is given, the weights (``state_to_keep()``) of the epoch with the highest ``select(row)`` are returned
    in ``best_state``. With a ``world`` of several ranks, each trains on its shard of every batch with the
    gradients summed over the ranks (:mod:`harness.train.distributed`); only rank 0 writes the checkpoint.
    ``evaluate_last`` (when given) replaces ``evaluate`` after the last epoch (test-time augmentation).
    ``lr_option`` names what sets ``recipe.lr`` in the error of a diverged stage (:class:`DivergenceGuard`).
    """
    trainable = [p for p in (params if params is not None else objective.parameters()) if p.requires_grad]
    optimizer = make_optimizer(trainable, recipe, norm_params(objective))
    base_lrs = [g["lr"] for g in optimizer.param_groups]  # before a checkpoint's optimizer state replaces them
    progress = Progress.of_checkpoint(
        resume_state(checkpoint, objective, optimizer, recipe, label, device) if resume else None
    )
    if progress.resumed_from_epoch:
        reporter.note(f"{label}: resumed after epoch {progress.epoch}/{recipe.epochs}")
    guard = DivergenceGuard(label, recipe.lr, len(stream), device, before_raise=reporter.end_stage, lr_option=lr_option)
    step = Step(
        forward if forward is not None else objective,
        optimizer,
        trainable,
        guard,
        device,
        amp=amp,
        world=world,
        warmup=warmup_batches,
    )
    hooks = BatchHooks(recipe, optimizer, base_lrs, len(stream), objective) if BatchHooks.wanted(recipe) else None
    reporter.start_stage(label, recipe.epochs, len(stream), completed=progress.epoch)
    for epoch in range(progress.epoch, recipe.epochs):
        set_lr(optimizer, base_lrs, recipe, epoch)
        start_epoch(objective, epoch, recipe.epochs)
        began = time.perf_counter()
        row = train_epoch(objective, stream, epoch, step, reporter, hooks)
        last = epoch + 1 == recipe.epochs
        evaluate_epoch(objective, row, epoch, evaluate_last if last and evaluate_last else evaluate, guard)
        score = select(row) if select is not None and state_to_keep is not None else None
        progress.finish_epoch(row, time.perf_counter() - began, score, state_to_keep)
        reporter.end_epoch(row)
        if checkpoint is not None and (world is None or world.is_main):
            try:
                save_checkpoint(checkpoint, objective, optimizer, progress, device)
            except BenchError:  # a full disk: the progress display ends before the error line
                reporter.end_stage()
                raise
    reporter.end_stage()
    return FitResult(progress.history, progress.seconds, progress.resumed_from_epoch, progress.best_state)
