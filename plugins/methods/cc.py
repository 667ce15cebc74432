"""``cc``: correlation congruence (Peng et al., ICCV 2019) in RepDistiller's form (the CRD benchmark's CC).

On the pooled penultimate embeddings (RepDistiller's ``feat[-1]``: ``head.embed`` of the last level), each
network's mapped by its own linear layer to ``feat_dim`` = 128 (RepDistiller's ``LinearEmbed``, PyTorch's
default initialisation; both trained with the student, the teacher's too, with weight decay). With
d = |e_s - e_t| per sample, the term is mean_i sum_k d_ik d_(i+1)k over consecutive samples of the batch
(RepDistiller's ``Correlation``, restructured by its author from code the CC authors shared).
loss = CE + 0.02 * CC (``scripts/run_cifar_distill.sh``: ``-a 0 -b 0.02``; ``--feat_dim 128``).

Paper and code disagree: the paper compares the correlation matrices of the batch's embeddings under a
Taylor-approximated Gaussian kernel; RepDistiller's loss (above) is not that matrix. We follow RepDistiller,
whose CC row of the CRD table this reproduces. The term's value depends on the batch order (consecutive
pairs), as in RepDistiller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from harness.api import COUNT, LevelClassifier, Objective, Option
from harness.kits.distill import (
    Outputs,
    WeightedDistillMethod,
    WeightedDistillObjective,
    Weights,
    pooled,
    weight_options,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


def cc_loss(e_s: torch.Tensor, e_t: torch.Tensor) -> torch.Tensor:
    delta = (e_s - e_t).abs()
    return (delta[:-1] * delta[1:]).sum(1).mean()


class CCObjective(WeightedDistillObjective):
    term = "cc"

    def __init__(
        self, student: LevelClassifier, teacher: LevelClassifier, feat_dim: int = 128, **weights: Unpack[Weights]
    ) -> None:
        super().__init__(student, teacher, **weights)
        self.embed_s = nn.Linear(student.head.embed_dim, feat_dim)
        self.embed_t = nn.Linear(teacher.head.embed_dim, feat_dim)

    def feature_loss(self, s: Outputs, t: Outputs) -> torch.Tensor:
        return cc_loss(self.embed_s(pooled(self.model, s)), self.embed_t(pooled(self.teacher, t)))


class CC(WeightedDistillMethod):
    options = {
        **weight_options(0.02, "scripts/run_cifar_distill.sh"),
        "feat_dim": Option(128, "width of the two linear embeddings (RepDistiller --feat_dim)", constraint=COUNT),
    }

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return CCObjective(student, teacher, self.opts["feat_dim"], **self.weights())
