"""``rkd``: relational knowledge distillation (Park et al., 2019), as in the CRD benchmark.

On the pooled penultimate embedding (``head.embed``). Distance term: pairwise Euclidean distances, each
network's divided by its mean over distinct pairs, smooth-L1 between student and teacher. Angle term: for
every triplet (i, j, k), the cosine of the angle at j between the normalised differences, smooth-L1.
loss = CE + 25 * distance + 50 * angle. Works across embedding sizes (only relations are compared).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from harness.api import NON_NEGATIVE, LevelClassifier, Objective, Option
from harness.kits.distill import DistillMethod, DistillObjective, Outputs


def pairwise_distances(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distance matrix with an exactly zero diagonal."""
    sq = e.pow(2).sum(1)
    d = (sq[:, None] + sq[None, :] - 2 * e @ e.t()).clamp(min=eps).sqrt()
    return d * (1 - torch.eye(len(e), device=e.device, dtype=d.dtype))


def distance_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        td = pairwise_distances(t)
        td = td / td[td > 0].mean()
    sd = pairwise_distances(s)
    sd = sd / sd[sd > 0].mean()
    return F.smooth_l1_loss(sd, td)


def angles(e: torch.Tensor) -> torch.Tensor:
    """cos of the angle at j of every triplet (i, j, k): <(e_i - e_j)/|.|, (e_k - e_j)/|.|>, flattened."""
    diff = F.normalize(e[None, :, :] - e[:, None, :], p=2, dim=2)  # diff[j, i] = e_i - e_j
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()


def angle_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        ta = angles(t)
    return F.smooth_l1_loss(angles(s), ta)


class RKDObjective(DistillObjective):
    def __init__(self, student: LevelClassifier, teacher: LevelClassifier, w_distance: float, w_angle: float):
        super().__init__(student, teacher)
        self.w_distance, self.w_angle = w_distance, w_angle

    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        es = self.model.head.embed(s.feats[-1]).float()
        with torch.no_grad():
            et = self.teacher.head.embed(t.feats[-1]).float()
        return {"rkd_distance": self.w_distance * distance_loss(es, et), "rkd_angle": self.w_angle * angle_loss(es, et)}


class RKD(DistillMethod):
    options = {
        "distance_weight": Option(25.0, "weight of the distance term", constraint=NON_NEGATIVE),
        "angle_weight": Option(50.0, "weight of the angle term", constraint=NON_NEGATIVE),
    }

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return RKDObjective(student, teacher, self.opts["distance_weight"], self.opts["angle_weight"])
