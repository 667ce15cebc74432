"""``at``: attention transfer (Zagoruyko & Komodakis, ICLR 2017) as run in the CRD benchmark (RepDistiller).

At every level's post-ReLU output (RepDistiller's ``feat[1:-1]`` with ``preact=False``: our features 1..L, see
``level_pairs``) each network's attention map is the channel mean of the p-th power of the features, flattened
and L2-normalised per sample; the term is the mean squared difference of the two maps, summed over the levels.
When the two maps differ in size the larger is average-pooled to the smaller (RepDistiller's ``at_loss``);
channel counts need not match. loss = CE + 1000 * sum_levels mean (Q_s/|Q_s| - Q_t/|Q_t|)^2, p = 2
(``scripts/run_cifar_distill.sh``: ``-a 0 -b 1000``; ``Attention(p=2)``).

Paper and code: Eq. 2 of the paper writes beta/2 times the p-norm of the difference of the normalised maps;
the authors' code (szagoruyko/attention-transfer ``utils.at_loss``, commit 893df54) and RepDistiller take
the mean of the squared difference times beta = 1000 (``cifar.py --beta 1e+3``, no 1/2). We follow the code.
The pooling of unequal sizes is RepDistiller's; the paper pairs maps of equal size.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from harness.api import POSITIVE, LevelClassifier, Objective, Option
from harness.kits.distill import LEVELS_OPTION, LevelwiseMethod, LevelwiseObjective, match_size, weight_options


def attention_map(f: torch.Tensor, p: float) -> torch.Tensor:
    """(N, C, H, W) -> (N, H*W): channel mean of f^p, L2-normalised per sample."""
    return F.normalize(f.pow(p).mean(1).flatten(1))


def at_loss(f_s: torch.Tensor, f_t: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    f_s, f_t = match_size(f_s, f_t)
    return (attention_map(f_s, p) - attention_map(f_t, p)).pow(2).mean()


class ATObjective(LevelwiseObjective):
    term = "at"

    def __init__(
        self, student: LevelClassifier, teacher: LevelClassifier, levels: list[int], p: float = 2.0, **weights: float
    ) -> None:
        super().__init__(student, teacher, levels, **weights)
        self.p = p

    def pair_loss(self, k: int, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        return at_loss(f_s, f_t, self.p)


class AT(LevelwiseMethod):
    options = {
        **weight_options(1000.0, "scripts/run_cifar_distill.sh"),
        "p": Option(
            2.0, "power of the features in the attention map (RepDistiller Attention(p=2))", constraint=POSITIVE
        ),
        "levels": LEVELS_OPTION,
    }

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return ATObjective(student, teacher, self.levels(student, teacher), self.opts["p"], **self.weights())
