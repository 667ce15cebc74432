"""The evaluation loops: a classifier's top-1 and cross-entropy, an objective's mean losses, on fixed batches.

Both run in eval mode under ``torch.no_grad`` and restore the module's training mode; under ``amp`` the
forward runs in bf16 autocast and the numbers are accumulated in fp32.

Test-time augmentation (``tta``, airbench94's ``infer``): ``mirror`` averages the logits of each image and of
its mirror image; ``mirror-translate`` averages, with weight 1/2, the mirror logits of the image and, with 1/4
each, those of the image shifted by one pixel up-left and down-right (reflection padding): six views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from harness.core.recipes import TTA_LEVELS
from harness.data.pipeline import EvalStream

if TYPE_CHECKING:
    from harness.train.objective import Objective


def _mirror(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return 0.5 * model(images) + 0.5 * model(images.flip(-1))


def tta_logits(model: nn.Module, images: torch.Tensor, tta: str) -> torch.Tensor:
    """The logits of ``images`` under test-time augmentation ``tta`` (one of :data:`TTA_LEVELS`)."""
    if tta not in TTA_LEVELS:
        raise ValueError(f"tta must be one of {TTA_LEVELS}, got {tta!r}")
    if tta == "none":
        return model(images)
    if tta == "mirror":
        return _mirror(model, images)
    h, w = images.shape[-2:]
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    shifted = [padded[:, :, :h, :w], padded[:, :, 2 : h + 2, 2 : w + 2]]
    return 0.5 * _mirror(model, images) + 0.25 * sum(_mirror(model, view) for view in shifted)


@torch.no_grad()
def accuracy(
    model: nn.Module, streams: Mapping[str, EvalStream], *, device_type: str, amp: bool, tta: str = "none"
) -> dict[str, float]:
    """``{split}_acc`` (top-1, %) and ``{split}_loss`` (mean cross-entropy) for every named stream, of the
    logits under test-time augmentation ``tta``."""
    was_training = model.training
    model.eval()
    out = {}
    for split, stream in streams.items():
        correct, loss, n = 0, 0.0, 0
        for images, labels in stream:
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
                logits = tta_logits(model, images, tta)
            loss += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
            correct += int((logits.argmax(1) == labels).sum())
            n += labels.numel()
        out[f"{split}_acc"] = correct / n * 100
        out[f"{split}_loss"] = loss / n
    model.train(was_training)
    return out


@torch.no_grad()
def objective_losses(
    objective: "Objective",
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    split: str,
    *,
    device_type: str,
    amp: bool,
) -> dict[str, float]:
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
