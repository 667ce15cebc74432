"""``vid``: variational information distillation (Ahn et al., CVPR 2019) as run in the CRD benchmark.

At every level's post-ReLU output (RepDistiller's ``feat[1:-1]`` with ``preact=False``: our features 1..L, see
``level_pairs``) a regressor predicts the teacher's map from the student's: three bias-free 1x1 convs, C_s ->
C_t -> C_t -> C_t with ReLUs between (RepDistiller's ``VIDLoss(s, t, t)``: the middle width is the teacher's
channel count), PyTorch's default initialisation. Each teacher channel has a learned variance log(1 +
exp(a_c)) + eps, a_c initialised so that it starts at ``init_pred_var`` = 5 (a_c = log(exp(5 - eps) - 1), eps
= 1e-5). The term is the Gaussian negative log-likelihood without its constant, 0.5 * ((mu - t)^2 / var + log
var), averaged over the batch, channels and positions, and summed over the levels; unequal map sizes are
matched by pooling the larger (RepDistiller). loss = CE + 1 * sum_levels NLL
(``scripts/run_cifar_distill.sh``: ``-a 0 -b 1``).

The regressors and variances are trained with the student (RepDistiller puts them in the optimiser, with
weight decay) and count as training-time extra parameters. The variance is computed as RepDistiller writes it,
``log(1 + exp(a)) + eps``, not with ``softplus``: at small variances the two differ by float32 rounding
(0.15% at a = -6; the golden fixture covers that range), and like RepDistiller's it overflows for a > 88.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.api import POSITIVE, LevelClassifier, Objective, Option, UsageError
from harness.kits.distill import LEVELS_OPTION, LevelwiseMethod, LevelwiseObjective, match_size, weight_options


def _conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, bias=False)


class VIDRegressor(nn.Module):
    """One level's mean regressor and per-channel variance (RepDistiller's ``VIDLoss`` module)."""

    def __init__(
        self, s_channels: int, mid_channels: int, t_channels: int, init_pred_var: float = 5.0, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.regressor = nn.Sequential(
            _conv1x1(s_channels, mid_channels),
            nn.ReLU(),
            _conv1x1(mid_channels, mid_channels),
            nn.ReLU(),
            _conv1x1(mid_channels, t_channels),
        )
        self.log_scale = nn.Parameter(torch.full((t_channels,), math.log(math.expm1(init_pred_var - eps))))
        self.eps = eps

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        f_s, f_t = match_size(f_s, f_t)
        mean = self.regressor(f_s)
        var = (torch.log(1.0 + torch.exp(self.log_scale)) + self.eps).view(1, -1, 1, 1)  # not softplus: see above
        return (0.5 * ((mean - f_t) ** 2 / var + torch.log(var))).mean()


class VIDObjective(LevelwiseObjective):
    term = "vid"

    def __init__(
        self,
        student: LevelClassifier,
        teacher: LevelClassifier,
        levels: list[int],
        init_pred_var: float = 5.0,
        eps: float = 1e-5,
        **weights: float,
    ) -> None:
        super().__init__(student, teacher, levels, **weights)
        channels = [(student.level_info[i].channels, teacher.level_info[i].channels) for i in levels]
        self.regressors = nn.ModuleList([VIDRegressor(s, t, t, init_pred_var, eps) for s, t in channels])

    def pair_loss(self, k: int, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        return self.regressors[k](f_s, f_t)


class VID(LevelwiseMethod):
    options = {
        **weight_options(1.0, "scripts/run_cifar_distill.sh"),
        "init_pred_var": Option(
            5.0, "initial variance of every teacher channel (RepDistiller VIDLoss)", constraint=POSITIVE
        ),
        "eps": Option(1e-5, "variance floor added to log(1 + exp(a)) (RepDistiller VIDLoss)", constraint=POSITIVE),
        "levels": LEVELS_OPTION,
    }

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        if self.opts["init_pred_var"] <= self.opts["eps"]:
            raise UsageError(
                f"option {self.name}.init_pred_var must exceed {self.name}.eps "
                f"({self.opts['eps']}), got {self.opts['init_pred_var']}"
            )
        return VIDObjective(
            student,
            teacher,
            self.levels(student, teacher),
            self.opts["init_pred_var"],
            self.opts["eps"],
            **self.weights(),
        )
