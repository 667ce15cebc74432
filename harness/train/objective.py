"""What the engine trains: an objective, ``forward(images, labels) -> StepOutput``.

mdistiller's distiller base class is the model: the objective owns the deployed ``model``, any training-time
extra modules (regressors, translators, decoders) and frozen modules (a teacher, kept in eval mode and out of
the optimiser); it returns named losses and, when it classifies, the logits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from harness.models.levels import count_params

M = TypeVar("M", bound=nn.Module)


@dataclass
class StepOutput:
    """What an objective returns for one batch: named loss terms (summed by the engine) and logits."""

    losses: dict[str, torch.Tensor]
    logits: torch.Tensor | None = None


class Objective(nn.Module):
    """Plain cross-entropy on ``model`` by default.

    ``model`` is the deployed model; any other trainable submodule is a training-time extra (counted
    separately in the record). ``frozen`` modules (teachers) are kept in eval mode and out of the optimiser.
    ``label_smoothing`` (set by the executor from the stage's recipe) is that of :meth:`ce`, the cross-entropy
    on labels of this objective and of the distillation kit; an objective that calls ``F.cross_entropy``
    itself trains without it.
    """

    label_smoothing: float = 0.0

    #: Whether :meth:`forward` takes a third argument, ``indices``: each training image's position in the
    #: training set (int64, ``0 .. n-1``), for methods keyed by sample (CRD's memory bank). The engine then
    #: draws the epoch's batches with their indices (:meth:`harness.data.pipeline.TrainStream.epoch`,
    #: ``indexed=True``: the same batches); every other objective is called as ``forward(images, labels)``,
    #: as always. Evaluation (``evaluate="losses"``) calls ``forward(images, labels)`` on the test set, so an
    #: objective that takes indices trains a classifier (``evaluate="accuracy"``) or accepts ``indices=None``.
    takes_indices: ClassVar[bool] = False

    def __init__(self, model: nn.Module, *, info: Mapping[str, Any] | None = None) -> None:
        """``info``: what building the objective found out or decided (where attention modules went, what a
        transform changed): it goes into the stage's ``info``, hence the record's, and is kept with the
        artifact."""
        super().__init__()
        self.model = model
        self.info: dict[str, Any] = dict(info or {})
        self._frozen: list[nn.Module] = []
        self._frozen_extras: list[nn.Module] = []

    def freeze(self, module: M, *, extra: bool = False) -> M:
        """Keep ``module`` out of training: no gradients, BatchNorm statistics fixed (eval mode).

        ``extra=True`` marks a frozen training-time module (FT's paraphraser) that still counts as an
        extra parameter; a teacher (``extra=False``) does not.
        """
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self._frozen.append(module)
        if extra:
            self._frozen_extras.append(module)
        return module

    def train(self, mode: bool = True) -> "Objective":
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    def frozen_modules(self) -> list[nn.Module]:
        """The frozen modules (teachers, a frozen paraphraser), in the order they were frozen."""
        return list(self._frozen)

    def extra_modules(self) -> list[nn.Module]:
        """Training-time modules that are not part of the deployed model (frozen teachers excluded)."""
        return [
            m
            for m in self.children()
            if m is not self.model
            and (all(m is not f for f in self._frozen) or any(m is f for f in self._frozen_extras))
        ]

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the engine before the first batch of every epoch it trains: 0-based ``epoch`` of the
        stage's ``epochs`` (also the first epoch after a resume, so nothing needs counting batches). An objective
        whose loss depends on training progress (DKD's warm-up, mdistiller's ``epoch`` argument) keeps what
        it needs here; the default does nothing, so no other objective's training changes. Keep the state it
        sets in tensors (buffers) rather than Python numbers if the forward is to be compiled once
        (``--compile``): a changed Python number in a compiled forward recompiles it."""

    def extra_params(self) -> int:
        return sum(count_params(m) for m in self.extra_modules())

    def ce(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on labels, with the recipe's label smoothing (none unless the recipe sets it)."""
        if self.label_smoothing:
            return F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return F.cross_entropy(logits, labels)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        logits = self.model(images)
        return StepOutput(losses={"ce": self.ce(logits, labels)}, logits=logits)
