"""The training engine: one loop for every method and stage.

An *objective* is an ``nn.Module`` whose ``forward(images, labels)`` returns a :class:`StepOutput` (logits
and named losses); the engine sums the losses, steps SGD and the schedule, evaluates every epoch and
checkpoints after every epoch so that an interrupted stage resumes exactly where it stopped (an epoch
interrupted half-way is replayed from its start: its batches are a function of (seed, epoch) only). A
checkpoint carries the digest of its content and is verified before a stage resumes from it
(:func:`resume_state`): a damaged one is set aside with one warning and the stage starts from scratch.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from harness.core.errors import BenchError, TrainingDiverged, one_line, warn
from harness.core.identity import state_digest
from harness.core.io import atomic_torch_save, set_aside
from harness.data.pipeline import TrainStream
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.train.artifacts import mismatch
from harness.train.distributed import World

#: "epoch:batch[:SIGNAL]": send the process SIGNAL (default KILL, e.g. TERM) there (the resume and signal tests)
FAULT_ENV = "BENCH_FAULT_KILL_AT"
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
    return module if mode is None else torch.compile(module, mode=mode, dynamic=False)


@dataclass
class FitResult:
    history: list[dict]
    seconds: float
    resumed_from_epoch: int = 0
    best_state: dict | None = None  # weights at the selected epoch when selection is not "last"


def lr_factor(recipe: Recipe, epoch: int) -> float:
    """Learning-rate multiplier for 0-based ``epoch`` (constant within an epoch, as the references do)."""
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


def make_optimizer(params: Iterable, recipe: Recipe) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                           nesterov=recipe.nesterov)


def _fault_point() -> tuple[int, int, signal.Signals] | None:
    raw = os.environ.get(FAULT_ENV)
    if not raw:
        return None
    epoch, batch, *name = raw.split(":")
    return int(epoch), int(batch), signal.Signals[f"SIG{name[0] if name else 'KILL'}"]


class DivergenceGuard:
    """Stops a stage at the first non-finite loss with :class:`TrainingDiverged` (label, epoch, batch, loss),
    in training and in the evaluation after each epoch (:meth:`evaluation`).

    On CPU every batch's summed loss is checked before ``backward`` (reading a CPU tensor costs no sync). On
    CUDA reading it would sync the device every batch, so the guard records the first bad batch and its loss
    terms on the device and reads them every ``CHECK_EVERY`` batches and at the end of each epoch (where the
    engine syncs anyway): the stage stops at most ``CHECK_EVERY`` batches late, and the error still names
    the first bad batch; no checkpoint is written after it.
    """

    CHECK_EVERY = 50

    def __init__(self, label: str, lr: float, batches: int, device: torch.device,
                 before_raise: Callable[[], None] = lambda: None) -> None:
        self.label, self.lr, self.batches, self.device = label, lr, batches, device
        self.before_raise = before_raise  # e.g. stop the progress display, so the error line stands alone
        self.deferred = device.type == "cuda"
        self._reset()

    def _reset(self) -> None:
        self.bad_batch: torch.Tensor | None = None  # CUDA: -1 while every loss is finite
        self.bad_terms: torch.Tensor | None = None
        self.names: list[str] = []

    def batch(self, epoch: int, b: int, losses: dict[str, torch.Tensor], total: torch.Tensor) -> None:
        """Check batch ``b`` (0-based) of 0-based ``epoch``; ``total`` is the sum of ``losses``."""
        if not self.deferred:
            if not bool(torch.isfinite(total.detach())):
                values = {name: float(v.detach().float()) for name, v in losses.items()}
                self._raise(epoch, b, values)
            return
        terms = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
        if self.bad_batch is None:
            self.names = list(losses)
            self.bad_batch = torch.full((), -1, dtype=torch.int64, device=total.device)
            self.bad_terms = torch.zeros_like(terms)
        newly = ~torch.isfinite(total.detach()) & (self.bad_batch < 0)
        self.bad_batch = torch.where(newly, torch.full_like(self.bad_batch, b), self.bad_batch)
        self.bad_terms = torch.where(newly, terms, self.bad_terms)
        if (b + 1) % self.CHECK_EVERY == 0:
            self.flush(epoch)

    def flush(self, epoch: int) -> None:
        """Read the deferred check (CUDA); a no-op on CPU."""
        bad_batch, terms, names = self.bad_batch, self.bad_terms, self.names
        self._reset()
        if bad_batch is not None and terms is not None and int(bad_batch) >= 0:
            self._raise(epoch, int(bad_batch), dict(zip(names, terms.tolist())))

    def evaluation(self, epoch: int, row: dict[str, float]) -> None:
        """Check what the stage's evaluation after 0-based ``epoch`` measured (test losses of a classifier, every
        loss of an objective evaluated with ``evaluate="losses"``): a non-finite number stops the stage."""
        for name, value in row.items():
            if isinstance(value, (int, float)) and not math.isfinite(value):
                self.before_raise()
                raise TrainingDiverged.in_evaluation(self.label, epoch + 1, name, value, self.lr)

    def _raise(self, epoch: int, b: int, values: dict[str, float]) -> None:
        bad = [(name, v) for name, v in values.items() if not math.isfinite(v)]
        name, value = bad[0] if bad else ("total", math.inf)  # finite terms whose sum overflowed
        self.before_raise()
        raise TrainingDiverged(self.label, epoch + 1, b + 1, self.batches, name, value, self.lr)


def resume_state(checkpoint: Path | None, objective: nn.Module, optimizer: torch.optim.Optimizer, recipe: Recipe,
                 label: str, device: torch.device) -> dict | None:
    """The state of a verified checkpoint, applied to ``objective``, ``optimizer`` and the RNGs; None when
    there is none. A checkpoint that cannot be trusted (unreadable, truncated, a digest that is not its
    content's, weights or optimiser state that do not fit) is one ``bench: warning:`` line naming the file,
    which is moved aside (``.damaged``), and None: the stage starts from scratch, never from a bad state."""
    if checkpoint is None or not checkpoint.exists():
        return None
    try:
        state = torch.load(checkpoint, weights_only=False, map_location=device)
    except Exception as exc:
        return _unusable(checkpoint, f"unreadable ({one_line(exc)})", label)
    fields = ("objective", "optimizer", "history", "epoch", "seconds", "rng_cpu", "digest")
    if not isinstance(state, dict) or any(f not in state for f in fields):
        return _unusable(checkpoint, f"not a bench checkpoint (it needs {', '.join(fields)})", label)
    stored = state.pop("digest")
    if state_digest(state) != stored:
        return _unusable(checkpoint, "its content's digest is not the one stored in it (damaged)", label)
    problem = mismatch(objective.state_dict(), state["objective"])
    if problem is None and not (isinstance(state["epoch"], int) and 0 < state["epoch"] <= recipe.epochs):
        problem = f"its epoch {state['epoch']!r} is not within the stage's {recipe.epochs} epochs"
    if problem:
        return _unusable(checkpoint, problem, label)
    before = {k: v.detach().clone() for k, v in objective.state_dict().items()}
    fresh = optimizer.state_dict()
    try:
        objective.load_state_dict(state["objective"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
    except Exception as exc:  # nothing of it is kept: the stage starts from its initial weights
        objective.load_state_dict(before)
        optimizer.load_state_dict(fresh)
        return _unusable(checkpoint, f"it does not fit ({one_line(exc)})", label)
    return state


def _unusable(checkpoint: Path, reason: str, label: str) -> None:
    moved = set_aside(checkpoint)
    where = f"moved aside to {moved.name}" if moved else "removed"
    warn(f"checkpoint {checkpoint} of {label} cannot be resumed from: {reason}; {where}, the stage starts "
         f"from scratch")
    return None


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
    """
    trainable = [p for p in (params if params is not None else objective.parameters()) if p.requires_grad]
    optimizer = make_optimizer(trainable, recipe)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    history: list[dict] = []
    start_epoch, elapsed = 0, 0.0
    best_state, best_score = None, -math.inf

    state = resume_state(checkpoint, objective, optimizer, recipe, label, device) if resume else None
    if state is not None:
        history, start_epoch, elapsed = state["history"], state["epoch"], state["seconds"]
        best_state, best_score = state.get("best_state"), state.get("best_score", -math.inf)
        reporter.note(f"{label}: resumed after epoch {start_epoch}/{recipe.epochs}")

    step = forward if forward is not None else objective
    warmup_left = warmup_batches
    fault = _fault_point()
    guard = DivergenceGuard(label, recipe.lr, len(stream), device, before_raise=reporter.end_stage)
    reporter.start_stage(label, recipe.epochs, len(stream), completed=start_epoch)
    for epoch in range(start_epoch, recipe.epochs):
        factor = lr_factor(recipe, epoch)
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * factor
        objective.train()
        t0 = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        correct = torch.zeros((), device=device)
        seen, has_logits = 0, False
        warmup_seconds, warm_images, t_counted = 0.0, 0, t0
        for b, (images, labels) in enumerate(stream.epoch(epoch)):
            t_batch = time.perf_counter()
            if fault is not None and (epoch + 1, b) == fault[:2]:
                os.kill(os.getpid(), fault[2])
            batch = labels.shape[0]
            if world is not None:
                images, labels = world.shard(images, labels)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = step(images, labels)
            loss = sum(out.losses.values())
            n = labels.shape[0]
            losses, hits = out.losses, None
            if world is None:
                guard.batch(epoch, b, out.losses, loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            else:  # every rank: the gradient of the global batch's mean loss (its shard's share, then summed)
                optimizer.zero_grad(set_to_none=True)
                (loss * (n / batch)).backward()
                with torch.no_grad():
                    mine = (out.logits.argmax(1) == labels).sum() if out.logits is not None else None
                losses, hits, n = world.reduce_step(trainable, out.losses, n, mine)
                guard.batch(epoch, b, losses, sum(losses.values()))  # the same numbers on every rank
            optimizer.step()
            if warmup_left:  # a compiled step's first calls compile it: timed apart from the throughput
                warmup_left -= 1
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t_counted = time.perf_counter()
                warmup_seconds += t_counted - t_batch
                warm_images += n
            seen += n
            with torch.no_grad():
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0) + value.detach().float() * n
                if out.logits is not None:
                    has_logits = True
                    correct += (out.logits.argmax(1) == labels).sum() if hits is None else hits
            reporter.advance_batch(seen, sums, correct)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        guard.flush(epoch)
        train_seconds = time.perf_counter() - t0
        row: dict = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        row.update({f"train_{k}": float(v) / seen for k, v in sums.items()})
        row["train_loss"] = sum(float(v) for v in sums.values()) / seen
        if has_logits:
            row["train_acc"] = float(correct) / seen * 100
        if warm_images:  # the images after the warm-up batches, over their time
            row["images_per_s"] = (seen - warm_images) / max(1e-9, train_seconds - (t_counted - t0))
            row["warmup_seconds"] = warmup_seconds
        else:
            row["images_per_s"] = seen / train_seconds
        row["train_seconds"] = train_seconds
        objective.eval()
        evaluated = evaluate()
        guard.evaluation(epoch, evaluated)  # before this epoch's checkpoint: a resumed run replays it
        row.update(evaluated)
        elapsed += time.perf_counter() - t0
        history.append(row)
        if select is not None and state_to_keep is not None:
            score = select(row)
            if score > best_score:
                best_score, best_state = score, {k: v.detach().clone() for k, v in state_to_keep().items()}
        reporter.end_epoch(row)
        if checkpoint is not None and (world is None or world.is_main):
            saved = {
                "objective": objective.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
                "epoch": epoch + 1, "seconds": elapsed, "best_state": best_state, "best_score": best_score,
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            }
            try:
                atomic_torch_save({**saved, "digest": state_digest(saved)}, checkpoint)
            except BenchError:  # a full disk: the progress display ends before the error line
                reporter.end_stage()
                raise
    reporter.end_stage()
    return FitResult(history=history, seconds=elapsed, resumed_from_epoch=start_epoch, best_state=best_state)
