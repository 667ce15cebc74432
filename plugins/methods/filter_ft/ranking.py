"""Which filters a distortion affects most: activation distances between clean and distorted inputs, ranked
per image and aggregated over images by the Borda count.

For every convolution of the model and every ranking image, each filter's distance is the L2 norm of the
difference between its output map on the clean image and on the distorted one. Each image is a voter: it
ranks the filters of every layer by that distance, and a filter gets ``r`` points for rank ``r`` (0 for the
least affected filter of its layer, ``n - 1`` for the most affected). A filter's Borda score is the sum of
its points over the images. Selection then takes the top filters of each layer (``select=filters``), or
whole layers, the most affected first (their mean distance relative to the clean activation's norm), until
they hold the same share of all filters (``select=layers``, the layer-level comparison at an equal budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LayerEvidence:
    """What the ranking images said about one convolution's filters."""

    borda: torch.Tensor  # (n,) summed Borda points
    relative: float  # mean over images and filters of ||a_clean - a_distorted|| / ||a_clean||


def conv_layers(model: nn.Module) -> dict[str, nn.Conv2d]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def borda_points(distances: torch.Tensor) -> torch.Tensor:
    """(images, n) distances -> (n,) summed points: each row ranks its filters, rank r (ascending) = r points."""
    return distances.argsort(dim=1).argsort(dim=1).sum(0)


@torch.no_grad()
def evidence(
    model: nn.Module, clean: torch.Tensor, distorted: torch.Tensor, batch_size: int = 100
) -> dict[str, LayerEvidence]:
    """Borda scores and relative distances of every conv's filters, from normalised clean and distorted images
    (the same images, same order)."""
    convs = conv_layers(model)
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        conv.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out.float()))
        for name, conv in convs.items()
    ]
    points = {name: torch.zeros(conv.out_channels, dtype=torch.long) for name, conv in convs.items()}
    relative = {name: 0.0 for name in convs}
    was_training = model.training
    model.eval()
    try:
        for start in range(0, clean.shape[0], batch_size):
            model(clean[start : start + batch_size])
            clean_maps = dict(outputs)
            model(distorted[start : start + batch_size])
            for name, a in clean_maps.items():
                diff = (a - outputs[name]).flatten(2).norm(dim=2)  # (images, filters)
                points[name] += borda_points(diff.cpu())
                relative[name] += float((diff / a.flatten(2).norm(dim=2).clamp_min(1e-8)).mean(1).sum())
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    n = max(1, clean.shape[0])
    return {name: LayerEvidence(points[name], relative[name] / n) for name in convs}


def top_filters(found: dict[str, LayerEvidence], fraction: float) -> dict[str, torch.Tensor]:
    """Boolean masks: the ``ceil(fraction * n)`` highest Borda scores of every layer."""
    masks = {}
    for name, ev in found.items():
        n = ev.borda.numel()
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.topk(ev.borda.float(), min(n, math.ceil(fraction * n))).indices] = True
        masks[name] = mask
    return masks


def top_layers(found: dict[str, LayerEvidence], fraction: float) -> dict[str, torch.Tensor]:
    """Boolean masks selecting whole layers, the most affected first, until they hold ``fraction`` of all
    filters (at least one layer)."""
    total = sum(ev.borda.numel() for ev in found.values())
    masks = {name: torch.zeros(ev.borda.numel(), dtype=torch.bool) for name, ev in found.items()}
    chosen = 0
    for name in sorted(found, key=lambda k: -found[k].relative):
        if chosen and chosen >= fraction * total:
            break
        masks[name][:] = True
        chosen += masks[name].numel()
    return masks
