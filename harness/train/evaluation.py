"""The evaluation loops: a classifier's top-1 and cross-entropy, an objective's mean losses, on fixed batches.

Both run in eval mode under ``torch.no_grad`` and restore the module's training mode; under ``amp`` the
forward runs in bf16 autocast and the numbers are accumulated in fp32.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from harness.data.pipeline import EvalStream

if TYPE_CHECKING:
    from harness.train.objective import Objective


@torch.no_grad()
def accuracy(model: nn.Module, streams: Mapping[str, EvalStream], *, device_type: str, amp: bool) -> dict[str, float]:
    """``{split}_acc`` (top-1, %) and ``{split}_loss`` (mean cross-entropy) for every named stream."""
    was_training = model.training
    model.eval()
    out = {}
    for split, stream in streams.items():
        correct, loss, n = 0, 0.0, 0
        for images, labels in stream:
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
                logits = model(images)
            loss += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
            correct += int((logits.argmax(1) == labels).sum())
            n += labels.numel()
        out[f"{split}_acc"] = correct / n * 100
        out[f"{split}_loss"] = loss / n
    model.train(was_training)
    return out


@torch.no_grad()
def objective_losses(objective: "Objective", batches: Iterable[tuple[torch.Tensor, torch.Tensor]], split: str, *,
                     device_type: str, amp: bool) -> dict[str, float]:
    """``{split}_{loss}``: the mean of each of ``objective``'s losses over ``batches`` (for stages that are not
    classifiers: autoencoders, paraphrasers)."""
    was_training = objective.training
    objective.eval()
    sums: dict[str, float] = {}
    n = 0
    for images, labels in batches:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            out = objective(images, labels)
        for k, v in out.losses.items():
            sums[k] = sums.get(k, 0.0) + float(v) * labels.numel()
        n += labels.numel()
    objective.train(was_training)
    return {f"{split}_{k}": v / max(1, n) for k, v in sums.items()}
