"""Anytime and budgeted-batch evaluation of a multi-exit classifier, on its exits' logits (MSDNet, Sec. 5).

Anytime: the accuracy of every exit, with the cumulative cost of reaching it. Budgeted batch: a sample
leaves at the first exit whose confidence (largest softmax probability) reaches that exit's threshold; the
last exit takes every sample left. Thresholds are set on a held-out split as in the authors' code
(kalviny/MSDNet-PyTorch, ``adaptive_inference.py``): for an exit distribution ``q_k ∝ p^k`` (``p`` from
0.05 to 2.0), exit k takes the ``q_k`` share of the held-out samples it is most confident about among those
still left; stopping every sample at exit k is a candidate too. For each MAC budget, the candidate whose
held-out average cost stays within the budget with the best held-out accuracy is kept and applied to the
test logits. Deviations: the authors report the whole
``p`` sweep as the curve; here the sweep is the candidate set and the curve has one point per budget. When an
exit's share is larger than the held-out samples still left (earlier exits took more than their shares
because of tied confidences), every sample left leaves at that exit; the authors' code then lets none leave
there (its threshold stays above every confidence). Otherwise the thresholds are the authors' (checked in
review against ``dynamic_eval_find_threshold`` over their whole sweep: the same accuracy and cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NEVER, ALWAYS = 2.0, -1.0  # thresholds no confidence (a softmax probability, in [1/C, 1]) reaches / misses


@dataclass(frozen=True)
class ExitLogits:
    """Every exit's softmax confidence and prediction for one split: tensors of shape (exits, samples)."""

    confidence: torch.Tensor
    prediction: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_logits(cls, logits: list[torch.Tensor], labels: torch.Tensor) -> "ExitLogits":
        probs = torch.stack([lg.float().softmax(dim=1) for lg in logits])
        confidence, prediction = probs.max(dim=2)
        return cls(confidence, prediction, labels)

    @property
    def exits(self) -> int:
        return self.confidence.shape[0]

    def accuracy_per_exit(self) -> list[float]:
        return [float((self.prediction[k] == self.labels).float().mean() * 100) for k in range(self.exits)]


@dataclass(frozen=True)
class Outcome:
    accuracy: float  # %
    macs: float  # average per sample
    exit_shares: list[float]  # share of the samples leaving at each exit


def exit_distribution(p: float, exits: int) -> torch.Tensor:
    """The authors' geometric exit distribution: ``q_k ∝ p^k``, k = 1..exits."""
    q = torch.tensor([p**k for k in range(1, exits + 1)], dtype=torch.float64)
    return q / q.sum()


def find_thresholds(held_out: ExitLogits, shares: torch.Tensor) -> torch.Tensor:
    """Per-exit confidence thresholds under which exit k takes ``shares[k]`` of the held-out samples (the
    most confident of those still left); the last exit takes the rest."""
    n = held_out.labels.numel()
    left = torch.ones(n, dtype=torch.bool)
    thresholds = torch.full((held_out.exits,), NEVER)
    for k in range(held_out.exits - 1):
        take = int(n * float(shares[k]))
        candidates = held_out.confidence[k][left]
        if take > 0 and candidates.numel():
            thresholds[k] = candidates.sort(descending=True).values[min(take, candidates.numel()) - 1]
        left &= held_out.confidence[k] < thresholds[k]
    thresholds[-1] = ALWAYS
    return thresholds


def apply_thresholds(split: ExitLogits, thresholds: torch.Tensor, exit_macs: list[float]) -> Outcome:
    """Each sample leaves at its first exit whose confidence reaches the threshold."""
    reaches = split.confidence >= thresholds[:, None]  # (exits, samples)
    exit_of = reaches.float().argmax(dim=0)  # first True (the last exit always reaches)
    correct = split.prediction.gather(0, exit_of[None])[0] == split.labels
    counts = torch.bincount(exit_of, minlength=split.exits).double()
    shares = counts / counts.sum()
    return Outcome(
        accuracy=float(correct.double().mean() * 100),
        macs=float((shares * torch.tensor(exit_macs, dtype=torch.float64)).sum()),
        exit_shares=[round(float(s), 6) for s in shares],
    )


SWEEP = [i / 20 for i in range(1, 41)]  # p = 0.05 .. 2.0: the authors' sweep (0.05 .. 1.95) and 2.0


def fixed_exit(k: int, exits: int) -> torch.Tensor:
    """Thresholds that send every sample to exit ``k`` (1-based): the anytime point of that exit."""
    thresholds = torch.full((exits,), NEVER)
    thresholds[k - 1 :] = ALWAYS
    return thresholds


def budgeted_curve(held_out: ExitLogits, test: ExitLogits, exit_macs: list[float], budgets: list[float]) -> list[dict]:
    """For each budget (MACs per sample), the thresholds chosen on ``held_out`` and their test outcome.
    Candidates: the authors' sweep of exit distributions, and stopping every sample at one exit."""
    rules = [(f"p={p:g}", find_thresholds(held_out, exit_distribution(p, held_out.exits))) for p in SWEEP]
    rules += [(f"exit {k}", fixed_exit(k, held_out.exits)) for k in range(1, held_out.exits + 1)]
    candidates = [(rule, t, apply_thresholds(held_out, t, exit_macs)) for rule, t in rules]
    curve = []
    for budget in budgets:
        within = [c for c in candidates if c[2].macs <= budget * (1 + 1e-9)]
        if not within:
            continue
        rule, thresholds, held = max(within, key=lambda c: (c[2].accuracy, -c[2].macs))
        result = apply_thresholds(test, thresholds, exit_macs)
        curve.append(
            {
                "budget_macs": budget,
                "rule": rule,
                "thresholds": [float(t) for t in thresholds],
                "held_out_acc": held.accuracy,
                "held_out_macs": held.macs,
                "test_acc": result.accuracy,
                "test_macs": result.macs,
                "test_exit_shares": result.exit_shares,
            }
        )
    return curve


def budgets_between(exit_macs: list[float], count: int) -> list[float]:
    """``count`` budgets evenly spaced from the first exit's cost to the last's."""
    lo, hi = exit_macs[0], exit_macs[-1]
    return [lo + (hi - lo) * i / max(1, count - 1) for i in range(count)]
