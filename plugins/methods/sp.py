"""``sp``: similarity-preserving distillation (Tung & Mori, ICCV 2019) as run in the CRD benchmark.

On the last level's post-ReLU output (RepDistiller's ``feat[-2]``, ``preact=False``: our last feature),
flattened per sample: each network's b x b Gram matrix of the batch, each row L2-normalised; the term is the
squared Frobenius distance of the two, divided by b^2. Any shapes work (only the batch's similarities are
compared). loss = CE + 3000 * SP (``scripts/run_cifar_distill.sh``: ``-a 0 -b 3000``)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from harness.api import LevelClassifier, Objective
from harness.kits.distill import Outputs, WeightedDistillMethod, WeightedDistillObjective, weight_options


def similarity(f: torch.Tensor) -> torch.Tensor:
    """The row-normalised Gram matrix of the flattened batch."""
    f = f.flatten(1)
    return F.normalize(f @ f.t())


def sp_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    return (similarity(f_t) - similarity(f_s)).pow(2).sum() / len(f_s) ** 2


class SPObjective(WeightedDistillObjective):
    term = "sp"

    def feature_loss(self, s: Outputs, t: Outputs) -> torch.Tensor:
        return sp_loss(s.feats[-1], t.feats[-1])


class SP(WeightedDistillMethod):
    options = weight_options(3000.0, "scripts/run_cifar_distill.sh")

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return SPObjective(student, teacher, **self.weights())
