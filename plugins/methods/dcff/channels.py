"""Which filters DCFF fuses in an architecture, and the compact architecture that deploys the fused filters.

A fused layer is a convolution whose output channels are reduced, the BatchNorm that follows it and the one
module that reads those channels (the next convolution, or the classifier). Which layers qualify is a property
of the architecture family:

* CIFAR VGGs (``cifar_vgg``): every convolution, a plain chain; the last one feeds ``head.fc``;
* CIFAR ResNets (``cifar_resnet``): the first convolution of every residual block (read by the block's second
  one). The block outputs are tied together by the identity shortcuts and are kept at full width.

Anything else is refused with one line, before training.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from harness.api import LevelClassifier, UsageError

#: the paper's VGG-16 CIFAR-10 setting (authors' README: pruning rates [0.5]*2+[0.4]*2+[0.35]*3+[0.85]*6),
#: written as kept fractions: 72.77M FLOPs as the authors count them (thop, their VGG layout), 1.06M
#: parameters, 93.47% top-1
PAPER_KEEP = {"vgg16": "0.5*2,0.6*2,0.65*3,0.15*6"}


@dataclass(frozen=True)
class FusedLayer:
    conv: str  # dotted path of the convolution whose filters are fused
    bn: str  # the BatchNorm2d after it
    consumer: str  # the module that reads its output channels
    width: int  # filters of the full architecture


def fused_layers(model: LevelClassifier, method: str) -> list[FusedLayer]:
    """The layers DCFF fuses in ``model`` (see the module docstring)."""
    if model.family == "cifar_vgg":
        return _vgg_chain(model)
    if model.family == "cifar_resnet":
        return _resnet_inner(model)
    raise UsageError(
        f"method '{method}' fuses the filters of the CIFAR VGGs (vgg8..vgg19: every conv) and "
        f"CIFAR ResNets (resnet8..resnet110: the first conv of each block); "
        f"'{model.arch_name}' is neither"
    )


def _vgg_chain(model: nn.Module) -> list[FusedLayer]:
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    bns = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    consumers = [n for n, _ in convs[1:]] + ["head.fc"]
    return [
        FusedLayer(name, bn, consumer, conv.out_channels)
        for (name, conv), bn, consumer in zip(convs, bns, consumers, strict=True)
    ]


def _resnet_inner(model: nn.Module) -> list[FusedLayer]:
    return [
        FusedLayer(f"{name}.conv1", f"{name}.bn1", f"{name}.conv2", block.conv1.out_channels)
        for name, block in model.named_modules()
        if all(
            isinstance(getattr(block, a, None), t)
            for a, t in (("conv1", nn.Conv2d), ("bn1", nn.BatchNorm2d), ("conv2", nn.Conv2d))
        )
    ]


def keep_ratios(spec: str, layers: list[FusedLayer], arch: str, method: str) -> list[float]:
    """``0.5`` (every layer), ``0.5*2,0.6*11`` or ``0.5,0.5,...`` (one per layer), or ``paper``."""
    if spec == "paper":
        if arch not in PAPER_KEEP:
            raise UsageError(
                f"option {method}.keep=paper: the paper gives keep ratios for "
                f"{', '.join(PAPER_KEEP)} only; give --opt {method}.keep=R (every one of the "
                f"{len(layers)} fused layers of {arch}) or one ratio per layer (R1,R2,... or R*N)"
            )
        spec = PAPER_KEEP[arch]
    ratios: list[float] = []
    try:
        for item in (t.strip() for t in spec.split(",") if t.strip()):
            value, _, repeat = item.partition("*")
            ratios += [float(value)] * (int(repeat) if repeat else 1)
    except ValueError:
        raise UsageError(
            f"option {method}.keep: expected R, R1,R2,... or R*N (e.g. 0.5*2,0.6*11), got {spec!r}"
        ) from None
    if len(ratios) == 1:
        ratios *= len(layers)
    if len(ratios) != len(layers):
        raise UsageError(
            f"option {method}.keep: {len(ratios)} ratio(s) for the {len(layers)} fused layers of "
            f"{arch}; give one ratio, or {len(layers)}"
        )
    if any(not 0 < r <= 1 for r in ratios):
        raise UsageError(f"option {method}.keep: every ratio must lie in (0, 1], got {spec!r}")
    return ratios


def kept_widths(layers: list[FusedLayer], ratios: list[float]) -> list[int]:
    """Filters kept per layer: ``floor(width * ratio)`` (as the authors' code), at least one."""
    return [max(1, math.floor(layer.width * r + 1e-6)) for layer, r in zip(layers, ratios)]


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def _narrow_conv(conv: nn.Conv2d, cin: int, cout: int) -> nn.Conv2d:
    geometry: dict[str, Any] = {
        "kernel_size": conv.kernel_size,
        "stride": conv.stride,
        "padding": conv.padding,
        "dilation": conv.dilation,
        "groups": conv.groups,
    }
    new = nn.Conv2d(cin, cout, **geometry, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight[:cout, :cin])
        if conv.bias is not None:
            assert new.bias is not None
            new.bias.copy_(conv.bias[:cout])
    return new


def _narrow_bn(bn: nn.BatchNorm2d, width: int) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(width, eps=bn.eps, momentum=bn.momentum)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, name).copy_(getattr(bn, name)[:width])
    return new


def _narrow_linear(fc: nn.Linear, cin: int) -> nn.Linear:
    new = nn.Linear(cin, fc.out_features, bias=fc.bias is not None)
    with torch.no_grad():
        new.weight.copy_(fc.weight[:, :cin])
        if fc.bias is not None:
            new.bias.copy_(fc.bias)
    return new


def narrowed(model: LevelClassifier, layers: list[FusedLayer], widths: list[int]) -> LevelClassifier:
    """A copy of ``model`` with each fused layer's conv and BN at its kept width and its consumer reading that
    many channels (weights sliced from ``model``: a deterministic start that training overwrites)."""
    compact = copy.deepcopy(model)
    out_width = {layer.conv: w for layer, w in zip(layers, widths)}
    in_width = {layer.consumer: w for layer, w in zip(layers, widths)}
    for path in {*out_width, *in_width}:
        module = model.get_submodule(path)
        if isinstance(module, nn.Conv2d):
            _set(
                compact,
                path,
                _narrow_conv(module, in_width.get(path, module.in_channels), out_width.get(path, module.out_channels)),
            )
        elif isinstance(module, nn.Linear):
            _set(compact, path, _narrow_linear(module, in_width[path]))
        else:
            raise UsageError(f"DCFF cannot narrow '{path}' ({type(module).__name__})")
    for layer, w in zip(layers, widths):
        bn = model.get_submodule(layer.bn)
        assert isinstance(bn, nn.BatchNorm2d)
        _set(compact, layer.bn, _narrow_bn(bn, w))
    _refresh_level_info(compact)
    compact.block_sites = []  # the declared attention sites name full-width channel counts
    return compact


@torch.no_grad()
def _refresh_level_info(model: LevelClassifier) -> None:
    """The level interface's channel counts after narrowing (spatial sizes are unchanged)."""
    first = model.level_info[0]
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    was_training = model.training
    model.eval()
    device = conv.weight.device
    feats = model.forward_levels(
        torch.zeros(1, conv.in_channels, first.size * first.reduction, first.size * first.reduction, device=device)
    )
    model.train(was_training)
    model.level_info = [replace(info, channels=f.shape[1]) for info, f in zip(model.level_info, feats)]
