"""One optimisation step, and what an epoch's steps add up to.

:class:`Step` is the engine's hot path: the forward pass (under bf16 autocast with ``amp``), the divergence
check, the backward pass and the SGD step, in one process or as one rank of a world (its shard of every
batch, the gradients summed over the ranks, :mod:`harness.train.distributed`). :class:`EpochTally` sums what
the steps measured (image-weighted losses, correct predictions, images, the warm-up batches' time) into the
epoch's history row. Nothing here reads the environment or the clock but to time the epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from harness.train.distributed import World
from harness.train.divergence import DivergenceGuard


@dataclass
class StepResult:
    """What one step measured: its losses (the global batch's under a world), its logits and labels (for the
    correct count: ``hits`` already holds it under a world) and its image count ``n``."""

    losses: dict[str, torch.Tensor]
    logits: torch.Tensor | None
    labels: torch.Tensor
    n: int
    hits: torch.Tensor | None = None


class Step:
    """Train on one batch: ``forward(images, labels)`` (the objective, or a compiled wrapper of it) returns the
    losses, whose sum passes ``guard`` before ``optimizer`` steps ``trainable`` (the parameters it trains).
    ``warmup``: how many of its first calls are warm-up (a compiled step compiles then), see :meth:`warming_up`."""

    def __init__(
        self,
        forward: Callable[..., Any],
        optimizer: torch.optim.Optimizer,
        trainable: list[nn.Parameter],
        guard: DivergenceGuard,
        device: torch.device,
        *,
        amp: bool = False,
        world: World | None = None,
        warmup: int = 0,
    ) -> None:
        self.forward, self.optimizer, self.trainable, self.guard = forward, optimizer, trainable, guard
        self.device, self.amp, self.world, self.warmup_left = device, amp, world, warmup

    def warming_up(self) -> bool:
        """Whether the call just made was a warm-up call (each warm-up call answers True once)."""
        if not self.warmup_left:
            return False
        self.warmup_left -= 1
        return True

    def __call__(
        self, epoch: int, b: int, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor | None = None
    ) -> StepResult:
        """Batch ``b`` (0-based) of 0-based ``epoch``: forward, check, backward, step. ``indices`` (the batch's
        positions in the training set) are passed on to the forward only when given: for an objective that
        ``takes_indices``."""
        batch = labels.shape[0]
        extra: tuple[torch.Tensor, ...] = () if indices is None else (indices,)
        if self.world is not None:
            images, labels, *shard = self.world.shard(images, labels, *extra)
            extra = tuple(shard)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.forward(images, labels, *extra)
        loss = sum(out.losses.values())
        if self.world is None:
            self.guard.batch(epoch, b, out.losses, loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            result = StepResult(out.losses, out.logits, labels, labels.shape[0])
        else:
            result = self._as_rank(epoch, b, out, loss, labels, batch)
        self.optimizer.step()
        return result

    def _as_rank(
        self, epoch: int, b: int, out: Any, loss: torch.Tensor, labels: torch.Tensor, batch: int
    ) -> StepResult:
        """Every rank: the gradient of the global batch's mean loss (its shard's share, then summed), and the
        global batch's losses and correct count, checked by the guard (the same numbers on every rank)."""
        assert self.world is not None
        n = labels.shape[0]
        self.optimizer.zero_grad(set_to_none=True)
        (loss * (n / batch)).backward()
        with torch.no_grad():
            mine = (out.logits.argmax(1) == labels).sum() if out.logits is not None else None
        losses, hits, n = self.world.reduce_step(self.trainable, out.losses, n, mine)
        self.guard.batch(epoch, b, losses, cast(torch.Tensor, sum(losses.values())))  # (never empty)
        return StepResult(losses, out.logits, labels, n, hits)


@dataclass
class EpochTally:
    """The sums of one epoch's steps, and the time of its warm-up batches (a compiled step's first calls)."""

    device: torch.device
    start: float  # perf_counter() when the epoch began
    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    correct: torch.Tensor = field(init=False)
    seen: int = 0
    has_logits: bool = False
    warmup_seconds: float = 0.0
    warm_images: int = 0
    counted_from: float = field(init=False)  # when the batches that count for the throughput began

    def __post_init__(self) -> None:
        self.correct = torch.zeros((), device=self.device)
        self.counted_from = self.start

    def warm_up(self, batch_start: float, n: int) -> None:
        """A warm-up batch of ``n`` images that began at ``batch_start`` ends now: timed apart from the others."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.counted_from = time.perf_counter()
        self.warmup_seconds += self.counted_from - batch_start
        self.warm_images += n

    def add(self, step: StepResult) -> None:
        """Add a step's image-weighted losses, its correct predictions and its images."""
        self.seen += step.n
        with torch.no_grad():
            for name, value in step.losses.items():
                self.sums[name] = self.sums.get(name, 0) + value.detach().float() * step.n
            if step.logits is not None:
                self.has_logits = True
                self.correct += (step.logits.argmax(1) == step.labels).sum() if step.hits is None else step.hits

    def row(self, epoch: int, lr: float, seconds: float) -> dict[str, Any]:
        """The epoch's history row (before its evaluation): 1-based ``epoch``, its ``lr``, its mean losses, its
        accuracy when the objective has logits, its throughput and its ``seconds`` of training."""
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
        row.update({f"train_{k}": float(v) / self.seen for k, v in self.sums.items()})
        row["train_loss"] = sum(float(v) for v in self.sums.values()) / self.seen
        if self.has_logits:
            row["train_acc"] = float(self.correct) / self.seen * 100
        if self.warm_images:  # the images after the warm-up batches, over their time
            row["images_per_s"] = (self.seen - self.warm_images) / max(1e-9, seconds - (self.counted_from - self.start))
            row["warmup_seconds"] = self.warmup_seconds
        else:
            row["images_per_s"] = self.seen / seconds
        row["train_seconds"] = seconds
        return row
