"""``crd``: contrastive representation distillation (Tian, Krishnan, Isola, ICLR 2020) as RepDistiller runs it.

Both networks' pooled penultimate features (``head.embed``) are embedded by a linear layer and L2-normalised
(``feat_dim`` 128, RepDistiller's ``Embed``; both embeddings are trained, the teacher's too, and are
training-time extras). A memory bank keeps one ``feat_dim`` vector per training image and network
(``memory_s``, ``memory_t``; initialised uniform in +-1/sqrt(feat_dim/3)). For every image of a batch, its own
index (the positive, ``mode exact``) and ``nce_k`` = 16384 indices of images of *other* classes (drawn
uniformly, without replacement unless a class has fewer than ``nce_k`` negatives: RepDistiller's
``CIFAR100InstanceSample``) pick rows of the other network's bank; the scores exp(<bank row, embedding> /
``nce_t``) (0.07), divided by a constant Z = mean score x N fixed on the first batch, feed the NCE loss of the
paper's Eq. 18 (noise 1/N, N = training images) on both sides (teacher as anchor over the student bank and
vice versa), summed. After the scores, each bank's rows of the batch move to ``nce_m`` (0.5) x row +
(1 - ``nce_m``) x embedding, renormalised. loss = ``ce_weight`` x CE + ``weight`` x NCE (+ ``kd_weight``
x KD, 0 by default: RepDistiller's README command ``-a 0 -b 0.8``; ``--opt crd.kd_weight=1`` is the paper's
CRD+KD). Defaults: RepDistiller ``train_student.py`` (feat_dim, nce_k, nce_t, nce_m) and its README (weights).

The training images' indices come from the shared pipeline (``Objective.takes_indices``: the same batches as
every other method, with each image's position in the training set), the negatives from the global torch
generator on the training device, so a run is reproducible and resumes exactly (the banks and Z are buffers of
the objective's checkpoint).

Deviations: the negatives are drawn on the device by torch (``torch.multinomial``), not by numpy in data-loader
workers (same distribution, other random numbers); ``mode relax`` (a positive of the same class) and the
alias-method sampler that RepDistiller uses without a sampling data loader are not offered. Under torchrun each
rank updates its own banks with its shard of the batch (RepDistiller trains on one GPU).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from harness.api import (
    COUNT,
    POSITIVE,
    UNIT_OPEN,
    LevelClassifier,
    Objective,
    Option,
    StageContext,
    StepOutput,
    UsageError,
)
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

EPS = 1e-7  # RepDistiller crd/criterion.py


class Embed(nn.Module):
    """Linear layer, then division by the L2 norm (no epsilon, as RepDistiller's ``Normalize``)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x.flatten(1))
        return x / x.pow(2).sum(1, keepdim=True).pow(0.5)


def nce_loss(scores: torch.Tensor, n_data: int) -> torch.Tensor:
    """The NCE loss of CRD's Eq. 18 on ``scores`` (B, 1 + K): column 0 the positive, the rest the negatives;
    noise probability 1/``n_data``. The sum over the batch of log-posteriors, negated, over the batch size."""
    m = scores.shape[1] - 1
    noise = m / float(n_data)
    pos, neg = scores[:, 0], scores[:, 1:]
    log_d1 = torch.log(pos / (pos + (noise + EPS)))
    log_d0 = torch.log(torch.full_like(neg, noise) / (neg + (noise + EPS)))
    return -(log_d1.sum() + log_d0.sum()) / scores.shape[0]


class ContrastMemory(nn.Module):
    """The two memory banks (one row per training image) and the normalisation constants Z (-1: not yet set)."""

    memory_s: torch.Tensor  # buffers
    memory_t: torch.Tensor
    z: torch.Tensor

    def __init__(self, feat_dim: int, n_data: int, temperature: float, momentum: float) -> None:
        super().__init__()
        self.n_data, self.temperature, self.momentum = n_data, temperature, momentum
        stdv = 1.0 / math.sqrt(feat_dim / 3)
        self.register_buffer("memory_s", torch.rand(n_data, feat_dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("memory_t", torch.rand(n_data, feat_dim).mul_(2 * stdv).add_(-stdv))
        self.register_buffer("z", torch.tensor([-1.0, -1.0]))  # Z of the student side, of the teacher side

    def _scores(self, memory: torch.Tensor, v: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
        rows = memory.index_select(0, contrast.flatten()).detach().view(*contrast.shape, -1)
        return torch.exp(torch.bmm(rows, v.unsqueeze(2)).squeeze(2) / self.temperature)

    def forward(
        self, v_s: torch.Tensor, v_t: torch.Tensor, index: torch.Tensor, contrast: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B, 1 + K) of the student embeddings against the teacher bank and of the teacher embeddings
        against the student bank, each divided by its Z; then the banks' rows ``index`` are updated."""
        out_s = self._scores(self.memory_t, v_s, contrast)
        out_t = self._scores(self.memory_s, v_t, contrast)
        with torch.no_grad():
            if bool(self.z[0] < 0):
                self.z[0] = out_s.mean() * self.n_data
            if bool(self.z[1] < 0):
                self.z[1] = out_t.mean() * self.n_data
        out_s, out_t = out_s / self.z[0], out_t / self.z[1]
        with torch.no_grad():
            for memory, v in ((self.memory_s, v_s), (self.memory_t, v_t)):
                rows = memory.index_select(0, index) * self.momentum + v * (1 - self.momentum)
                memory.index_copy_(0, index, rows / rows.pow(2).sum(1, keepdim=True).pow(0.5))
        return out_s, out_t


class CRDHead(nn.Module):
    """Embeddings, memory and loss: ``forward(f_s, f_t, index, contrast)`` -> NCE(student) + NCE(teacher)."""

    def __init__(self, s_dim: int, t_dim: int, feat_dim: int, n_data: int, temperature: float, momentum: float) -> None:
        super().__init__()
        self.embed_s, self.embed_t = Embed(s_dim, feat_dim), Embed(t_dim, feat_dim)
        self.memory = ContrastMemory(feat_dim, n_data, temperature, momentum)

    def forward(
        self, f_s: torch.Tensor, f_t: torch.Tensor, index: torch.Tensor, contrast: torch.Tensor
    ) -> torch.Tensor:
        out_s, out_t = self.memory(self.embed_s(f_s), self.embed_t(f_t), index, contrast)
        n = self.memory.n_data
        return nce_loss(out_s, n) + nce_loss(out_t, n)


class NegativeSampler(nn.Module):
    """For each image: its own index, then ``k`` indices of training images of other classes, drawn uniformly,
    without replacement unless its class has fewer than ``k`` negatives (RepDistiller's ``exact`` mode)."""

    train_labels: torch.Tensor  # a buffer

    def __init__(self, train_labels: torch.Tensor, k: int) -> None:
        super().__init__()
        self.k = k
        self.register_buffer("train_labels", train_labels.clone(), persistent=False)

    def forward(self, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        weights = (self.train_labels[None, :] != labels[:, None]).float()
        short = weights.sum(1) < self.k
        drawn = torch.empty(len(labels), self.k, dtype=torch.long, device=labels.device)
        for replace in (False, True):
            rows = short if replace else ~short
            if bool(rows.any()):
                drawn[rows] = torch.multinomial(weights[rows], self.k, replacement=replace)
        return torch.cat([index[:, None], drawn], 1)


class CRDObjective(WeightedDistillObjective):
    """RepDistiller's total loss with CRD's NCE on the pooled embeddings as the method's term; ``forward`` takes
    sample indices."""

    term = "crd"
    takes_indices = True

    def __init__(
        self,
        student: LevelClassifier,
        teacher: LevelClassifier,
        train_labels: torch.Tensor,
        *,
        feat_dim: int,
        nce_k: int,
        nce_t: float,
        nce_m: float,
        **weights: Unpack[Weights],
    ) -> None:
        super().__init__(student, teacher, **weights)
        self.crd = CRDHead(student.head.embed_dim, teacher.head.embed_dim, feat_dim, len(train_labels), nce_t, nce_m)
        self.sampler = NegativeSampler(train_labels, nce_k)
        self._index: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None

    def forward(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor | None = None) -> StepOutput:
        if indices is None:
            raise RuntimeError("crd: the objective needs each image's index in the training set (takes_indices)")
        self._index, self._labels = indices, labels
        try:
            return super().forward(images, labels)
        finally:
            self._index = self._labels = None

    def feature_loss(self, s: Outputs, t: Outputs) -> torch.Tensor:
        assert self._index is not None and self._labels is not None
        f_s, f_t = pooled(self.model, s), pooled(self.teacher, t).detach()
        return self.crd(f_s, f_t, self._index, self.sampler(self._labels, self._index))


class CRD(WeightedDistillMethod):
    options = {
        "feat_dim": Option(128, "dimension of the embedding both networks are projected to", constraint=COUNT),
        "nce_k": Option(16384, "negatives per image (drawn from other classes)", constraint=COUNT),
        "nce_t": Option(0.07, "temperature of the scores", constraint=POSITIVE),
        "nce_m": Option(0.5, "momentum of the memory-bank update", constraint=UNIT_OPEN),
        **weight_options(0.8, "0.8: the README's crd command; kd_weight=1 is the paper's CRD+KD"),
    }

    def make_objective(
        self, student: LevelClassifier, teacher: LevelClassifier, train_labels: torch.Tensor | None = None
    ) -> Objective:
        labels = torch.zeros(0, dtype=torch.long) if train_labels is None else train_labels
        if len(labels) and len(labels.unique()) < 2:
            raise UsageError(
                "crd: the training set has a single class, so no image has a negative (an image of "
                "another class); train on a dataset with at least two classes"
            )
        o = self.opts
        return CRDObjective(
            student,
            teacher,
            labels,
            feat_dim=o["feat_dim"],
            nce_k=o["nce_k"],
            nce_t=o["nce_t"],
            nce_m=o["nce_m"],
            **self.weights(),
        )

    def objective(self, ctx: StageContext) -> Objective:
        """The memory banks have one row per training image of the run (``ctx.dataset.train_labels``)."""
        return self.make_objective(*self.student_and_teacher(ctx), ctx.dataset.train_labels)
