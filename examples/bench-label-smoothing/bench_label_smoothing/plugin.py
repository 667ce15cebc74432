"""``label-smoothing``: cross-entropy against smoothed targets (Szegedy et al., 2016).

A complete third-party method: an objective (the loss) and a method class declaring its option and building
that objective around a fresh model (the package's ``__init__`` registers it). Everything else (data, recipe,
training, caching, records, tables) is the harness's.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from harness.api import UNIT_OPEN, Method, Objective, Option, StageContext, StepOutput


class SmoothedCrossEntropy(Objective):
    def __init__(self, model: torch.nn.Module, epsilon: float) -> None:
        super().__init__(model)
        self.epsilon = epsilon

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        logits = self.model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.epsilon)
        return StepOutput(losses={"smoothed_ce": loss}, logits=logits)


class LabelSmoothing(Method):
    options = {"epsilon": Option(0.1, "probability mass spread uniformly over all classes", constraint=UNIT_OPEN)}

    def objective(self, ctx: StageContext) -> Objective:
        return SmoothedCrossEntropy(ctx.build_arch(), self.opts["epsilon"])
