"""``pkt``: probabilistic knowledge transfer (Passalis & Tefas, ECCV 2018) as run in the CRD benchmark.

On the pooled penultimate embedding (RepDistiller's ``feat[-1]``: ``head.embed`` of the last level). Each
network's embeddings are L2-normalised (norm + 1e-7; NaN set to 0, as RepDistiller), their cosine
similarities mapped to [0, 1] by (c + 1) / 2 and each row divided by its sum (a conditional distribution
over the batch); the term is mean_ij p_t log((p_t + eps) / (p_s + eps)), eps = 1e-7, the mean over all b^2
entries (RepDistiller's ``PKT.cosine_similarity_loss``, from the authors' code). Works across embedding sizes.
loss = CE + 30000 * PKT (``scripts/run_cifar_distill.sh``: ``-a 0 -b 30000``).

Paper and code: the paper states a KL divergence between the two conditional distributions (a sum over j for
each i); the code averages over all entries, i.e. the KL divided by b^2, hence the large weight.
"""

from __future__ import annotations

import torch

from harness.api import LevelClassifier, Objective
from harness.kits.distill import Outputs, WeightedDistillMethod, WeightedDistillObjective, pooled, weight_options

EPS = 1e-7


def conditional_probabilities(e: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Row-normalised (cosine + 1) / 2 similarities of the batch's embeddings."""
    e = e / (e.pow(2).sum(1, keepdim=True).sqrt() + eps)
    e = torch.where(torch.isnan(e), torch.zeros_like(e), e)
    sim = (e @ e.t() + 1.0) / 2.0
    return sim / sim.sum(1, keepdim=True)


def pkt_loss(e_s: torch.Tensor, e_t: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    p_s, p_t = conditional_probabilities(e_s, eps), conditional_probabilities(e_t, eps)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()


class PKTObjective(WeightedDistillObjective):
    term = "pkt"

    def feature_loss(self, s: Outputs, t: Outputs) -> torch.Tensor:
        return pkt_loss(pooled(self.model, s), pooled(self.teacher, t))


class PKT(WeightedDistillMethod):
    options = weight_options(30000.0, "scripts/run_cifar_distill.sh")

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return PKTObjective(student, teacher, **self.weights())
