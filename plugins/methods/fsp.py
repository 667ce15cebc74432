"""``fsp``: the flow of solution procedure (Yim et al., CVPR 2017) as RepDistiller runs it.

The FSP matrix of two consecutive features of a network (stem output and every level's output: RepDistiller's
``feat[:-1]``) is the spatial mean of the products of their channels, G[i, j] = mean_xy top_i * bottom_j, the
larger map first average-pooled to the smaller. An init stage (:class:`harness.kits.distill.StudentInitMethod`)
trains the student's stem and levels for 30 epochs (at the CRD budget of 240, scaled) on the sum over the
feature pairs of mean((G_s - G_t)^2); then the whole student trains with cross-entropy alone (RepDistiller's
main loop adds no FSP term: ``loss_kd = 0`` for ``fsp``, so its ``-b 50`` multiplies nothing).

Student and teacher must have the same channel counts at every feature (the FSP matrices are compared
element-wise; RepDistiller raises for other pairs and reports N/A for wrn-40-2 -> wrn-40-1); such a pair is
refused before training. The paper's own schedule (two stages, then fine-tuning on the main task) and its
weighting of the matrices are not RepDistiller's; we follow RepDistiller.
"""

from __future__ import annotations

from typing import cast

import torch
from torch.nn import functional as F

from harness.api import LevelClassifier, Objective, StepOutput, UsageError
from harness.kits.distill import StudentInitMethod


def fsp_matrices(feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """(B, C_top, C_bottom) FSP matrix of each pair of consecutive features."""
    out = []
    for bottom, top in zip(feats, feats[1:]):
        if bottom.shape[2] > top.shape[2]:
            bottom = F.adaptive_avg_pool2d(bottom, (top.shape[2], top.shape[3]))
        elif bottom.shape[2] < top.shape[2]:
            top = F.adaptive_avg_pool2d(top, (bottom.shape[2], bottom.shape[3]))
        b, t = bottom.flatten(2), top.flatten(2)
        out.append(torch.bmm(t, b.transpose(1, 2)) / b.shape[2])
    return out


def fsp_losses(s_feats: list[torch.Tensor], t_feats: list[torch.Tensor]) -> list[torch.Tensor]:
    """mean((G_s - G_t)^2) of each pair of consecutive features."""
    return [(s - t).pow(2).mean() for s, t in zip(fsp_matrices(s_feats), fsp_matrices(t_feats))]


class FSPInitObjective(Objective):
    """The init stage: the student's features learn the teacher's FSP matrices (no classification)."""

    model: LevelClassifier
    teacher: LevelClassifier

    def __init__(self, student: LevelClassifier, teacher: LevelClassifier) -> None:
        s_c = [i.channels for i in student.level_info]
        t_c = [i.channels for i in teacher.level_info]
        if s_c != t_c:
            raise UsageError(
                f"fsp (init stage): {student.arch_name} has feature channels {s_c} and "
                f"{teacher.arch_name} {t_c}; FSP compares the matrices element-wise, so the channel "
                f"counts must be equal: pick a teacher of the student's widths"
            )
        super().__init__(student)
        self.teacher = self.freeze(teacher)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        s = self.model.forward_levels(images)
        with torch.no_grad():
            t = self.teacher.forward_levels(images)
        with torch.autocast(images.device.type, enabled=False):
            losses = fsp_losses([f.float() for f in s], [f.float() for f in t])
        return StepOutput(losses={"fsp": cast(torch.Tensor, sum(losses))})


class FSP(StudentInitMethod):
    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return FSPInitObjective(student, teacher)
