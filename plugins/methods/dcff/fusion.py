"""DCFF's filter fusion: inter-similarity distributions, their KL importance, the temperature schedule.

For one layer with filters ``W_1..W_n`` (flattened), at temperature ``T``:

* distribution of filter ``k`` over the layer's filters: ``p_k(j) = softmax_j(-T * ||W_k - W_j||_2)``
  (at ``T -> inf`` it is one-hot on ``k`` itself);
* importance of filter ``k``: ``sum_j KL(p_k || p_j)``: a filter whose distribution differs from the others'
  is less replaceable; the ``m`` most important filters are kept;
* fused filter of a kept filter ``k``: ``sum_j p_k(j) W_j`` (and the same for its bias): every filter of the
  full layer contributes to the compact one, less and less as ``T`` grows;
* temperature at 0-based epoch ``e`` of ``E``: ``T(e) = A / (1 + exp(-s e)) + T_s - A / 2`` with
  ``A = 2 (T_e - T_s) (1 + exp(-s E)) / (1 - exp(-s E))``: ``T(0) = T_s``, ``T(E) = T_e``, a sigmoid in
  the epoch (defaults ``T_s = 1``, ``T_e = 10^4``, ``s = 1``, as the authors' code; with ``s = 1`` the
  distributions are practically one-hot after the first few epochs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class TemperatureSchedule:
    start: float = 1.0
    end: float = 1e4
    slope: float = 1.0
    epochs: int = 1

    def at(self, epoch: int) -> float:
        """The temperature of 0-based ``epoch``."""
        if self.epochs <= 0 or self.end == self.start:
            return self.start
        decay = math.exp(-self.slope * self.epochs)
        amplitude = 2 * (self.end - self.start) * (1 + decay) / (1 - decay)
        return amplitude / (1 + math.exp(-self.slope * epoch)) + self.start - amplitude / 2


def log_similarity(weights: torch.Tensor, temperature: float) -> torch.Tensor:
    """(n, n) log-probabilities: row ``k`` is ``log p_k`` over the layer's ``n`` filters (``weights``: (n, ...))."""
    flat = weights.detach().float().reshape(weights.shape[0], -1)
    return F.log_softmax(-temperature * torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist"), dim=1)


def importance(log_p: torch.Tensor) -> torch.Tensor:
    """(n,) ``sum_j KL(p_k || p_j)`` for every filter ``k``, from the rows of :func:`log_similarity` (in the log
    domain, so the scores stay finite as the distributions become one-hot)."""
    p = log_p.exp()
    # KL(p_k || p_j) = sum_i p_k(i) (log p_k(i) - log p_j(i))
    self_term = (p * log_p).sum(1)  # (n,)
    cross = p @ log_p.T  # (k, j): sum_i p_k(i) log p_j(i)
    return (self_term[:, None] - cross).sum(1)


def select(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """The ``keep`` highest-scoring filters, in ascending index order (so that a stable selection keeps each
    compact channel where it was)."""
    return torch.topk(scores, keep).indices.sort().values


def fusion_matrix(weights: torch.Tensor, keep: int, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(the (keep, n) fusion matrix: rows ``p_k`` of the kept filters, the kept filters' indices)."""
    log_p = log_similarity(weights, temperature)
    kept = select(importance(log_p), keep)
    return log_p[kept].exp(), kept
