"""``nst``: neuron selectivity transfer (Huang & Wang, 2017) as run in the CRD benchmark (RepDistiller).

At every level's post-ReLU output (RepDistiller's ``feat[1:-1]`` with ``preact=False``: our features 1..L, see
``level_pairs``) each channel's map is flattened and L2-normalised over its positions; the term is the squared
MMD between the two sets of channel vectors with the polynomial kernel k(x, y) = (x . y)^2 (d = 2, c = 0):
mean k(t, t) + mean k(s, s) - 2 mean k(s, t), the means over all pairs of channels and the batch, summed over
the levels. Unequal map sizes: the larger is average-pooled to the smaller (RepDistiller's ``nst_loss``);
channel counts need not match. loss = CE + 50 * sum_levels MMD^2 (``scripts/run_cifar_distill.sh``: ``-a 0 -b
50``; RepDistiller's ``full_loss = True``).

Implementation: RepDistiller's ``poly_kernel`` broadcasts an (N, C_s, C_t, H*W) product before summing; we
take the same sums as a batched matrix product (the same value, to float rounding, in a fraction of the
memory: its product for resnet32x4's first level is 1 GiB at batch 64). The teacher-teacher term is a
constant for the student, as RepDistiller's ``detach`` makes it.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from harness.api import LevelClassifier, Objective
from harness.kits.distill import LEVELS_OPTION, LevelwiseMethod, LevelwiseObjective, match_size, weight_options


def poly_kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean over the batch and all channel pairs (i, j) of (a_i . b_j)^2; a (N, C_a, P), b (N, C_b, P)."""
    return torch.bmm(a, b.transpose(1, 2)).pow(2).mean()


def nst_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    f_s, f_t = match_size(f_s, f_t)
    f_s, f_t = F.normalize(f_s.flatten(2), dim=2), F.normalize(f_t.flatten(2), dim=2)
    return poly_kernel_mean(f_t, f_t).detach() + poly_kernel_mean(f_s, f_s) - 2 * poly_kernel_mean(f_s, f_t)


class NSTObjective(LevelwiseObjective):
    term = "nst"

    def pair_loss(self, k: int, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        return nst_loss(f_s, f_t)


class NST(LevelwiseMethod):
    options = {**weight_options(50.0, "scripts/run_cifar_distill.sh"), "levels": LEVELS_OPTION}

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return NSTObjective(student, teacher, self.levels(student, teacher), **self.weights())
