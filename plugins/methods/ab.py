"""``ab``: knowledge transfer via distillation of activation boundaries (Heo et al., AAAI 2019), as RepDistiller
runs it.

On every level's output before its final ReLU (RepDistiller's ``preact`` features ``feat[1:-1]``, taken by
:func:`harness.kits.distill.preact_levels`): a connector maps the student's map to the teacher's shape
(nothing when channels and size already agree, else RepDistiller's ``ConvReg`` without its ReLU: conv + BN),
and the alternative L2 loss pushes the connected student response s beyond the margin m = 1 on the side of
the teacher's activation t: sum of (s + m)^2 where s > -m and t <= 0, and (s - m)^2 where s <= m and t > 0,
over the batch size, x 3/1000, weighted 2^(i - n + 1) for level i of n (the last level 1, the one before 1/2,
...). An init stage (:class:`harness.kits.distill.StudentInitMethod`) trains the student's stem and levels
and the connectors on it for 30 epochs (at the CRD budget of 240, scaled); then the whole student trains with
cross-entropy alone (RepDistiller's main loop adds no AB term, ``loss_kd = 0``; its ``-b 1`` multiplies
nothing) and the connectors are dropped (they count as training-time extra parameters).

Deviations from the AB authors' code (bhheo/AB_distillation): RepDistiller's weights and scale above, not
theirs; a level whose output is not a ReLU's is refused before training.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from harness.api import POSITIVE, LevelClassifier, Objective, Option, StepOutput, UsageError
from harness.kits.distill import ConvRegressor, StudentInitMethod, preact_levels, require_preact


def ab_losses(s_feats: list[torch.Tensor], t_feats: list[torch.Tensor], margin: float) -> list[torch.Tensor]:
    """The weighted alternative L2 loss of each level (RepDistiller's ``ABLoss``)."""
    n, batch = len(s_feats), s_feats[0].shape[0]
    losses = []
    for i, (s, t) in enumerate(zip(s_feats, t_feats)):
        loss = (
            (
                (s + margin) ** 2 * ((s > -margin) & (t <= 0)).float()
                + (s - margin) ** 2 * ((s <= margin) & (t > 0)).float()
            )
            .abs()
            .sum()
        )
        losses.append(2 ** (i - n + 1) * loss / batch / 1000 * 3)
    return losses


def connector(s_channels: int, s_size: int, t_channels: int, t_size: int) -> nn.Module:
    if s_channels == t_channels and s_size == t_size:
        return nn.Identity()
    return ConvRegressor(s_channels, s_size, t_channels, t_size, relu=False, what="ab (connector)")


class ABInitObjective(Objective):
    """The init stage: connected student pre-activations learn the teacher's activation boundaries."""

    model: LevelClassifier
    teacher: LevelClassifier

    def __init__(self, student: LevelClassifier, teacher: LevelClassifier, margin: float) -> None:
        require_preact(student, "ab (init stage), the student")
        require_preact(teacher, "ab (init stage), the teacher")
        s_info, t_info = student.level_info[1:], teacher.level_info[1:]
        if len(s_info) != len(t_info):
            raise UsageError(
                f"ab (init stage): {student.arch_name} has {len(s_info)} levels and "
                f"{teacher.arch_name} {len(t_info)}; AB pairs the levels one to one"
            )
        super().__init__(student)
        self.teacher = self.freeze(teacher)
        self.connectors = nn.ModuleList(
            connector(s.channels, s.size, t.channels, t.size) for s, t in zip(s_info, t_info)
        )
        self.margin = margin

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        s = preact_levels(self.model, images)
        with torch.no_grad():
            t = preact_levels(self.teacher, images)
        with torch.autocast(images.device.type, enabled=False):  # connectors and loss in fp32, as the distill kit's
            s = [c(f.float()) for c, f in zip(self.connectors, s)]
            losses = ab_losses(s, [f.float() for f in t], self.margin)
        return StepOutput(losses={"ab": cast(torch.Tensor, sum(losses))})


class AB(StudentInitMethod):
    options = {
        **StudentInitMethod.options,
        "margin": Option(1.0, "margin m of the alternative L2 loss", constraint=POSITIVE),
    }

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return ABInitObjective(student, teacher, self.opts["margin"])
