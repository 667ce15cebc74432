"""``lowrank``: every kxk convolution (k > 1) replaced by low-rank filters, then trained from scratch.

Source: Ioannou, Robertson, Shotton, Cipolla, Criminisi, "Training CNNs with Low-Rank Filters for Efficient
Image Classification" (ICLR 2016): instead of
approximating a trained network, the network is trained from the start with filters of low rank. Two forms:

* ``variant=sequential`` (default): a 1xk convolution to ``m`` channels, then a kx1 convolution to the
  output channels. Each output filter is a sum of ``m`` separable (rank-1) kxk filters: a kxk convolution of
  rank at most ``m`` per input-output pair. Stride and padding are split between the two.
* ``variant=basis``: the paper's low-rank basis: ``m`` basis filters, half 1xk and half kx1, applied side by
  side to the input, concatenated, and linearly combined by a 1x1 convolution into the output channels.

``m = rank x min(C_in, C_out)`` (``rank`` 1.0 by default: for C -> C channels the sequential pair has 6C²
weights instead of 9C², the basis 4C²). ``mid=bn-relu`` puts BatchNorm and ReLU between the two parts (the
paper's networks have them after every convolution); by default the pair is linear, so that it is exactly
a low-rank kxk filter bank. The original convolution's bias (VGG) goes on the last part. Convolutions with
groups, and 1x1 ones, are kept. Deployed parameters and MACs are those of the new layers (measured).

Initialisation (a choice, the paper trains with its own): Kaiming normal, fan-in; the first part with unit
gain, the last with ReLU gain, so the pair has the variance of a Kaiming-initialised kxk convolution.
Deviation: applies to any architecture (every eligible ``nn.Conv2d``), the stem included; the paper chose
per network which layers to replace and how many basis filters each gets (here one ``rank`` for all).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from harness.api import POSITIVE, Option, UsageError
from harness.kits.transform import ArchTransformMethod

VARIANTS = ("sequential", "basis")
MIDS = ("none", "bn-relu")


def _conv(
    cin: int,
    cout: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    bias: bool = False,
) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)


def _middle(channels: int, mid: str) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)] if mid == "bn-relu" else []


def _init(first: list[nn.Conv2d], last: nn.Conv2d) -> None:
    for conv in first:
        nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="linear")
    nn.init.kaiming_normal_(last.weight, mode="fan_in", nonlinearity="relu")
    if last.bias is not None:
        nn.init.zeros_(last.bias)


def _parts(conv: nn.Conv2d) -> tuple[int, tuple[int, int], tuple[int, int], tuple[int, int]]:
    k = conv.kernel_size[0]
    pair = tuple[int, int]  # what a Conv2d holds (a padding that is a string is not eligible)
    return k, cast(pair, conv.stride), cast(pair, conv.padding), cast(pair, conv.dilation)


def sequential_pair(conv: nn.Conv2d, m: int, mid: str) -> nn.Sequential:
    """1xk (horizontal stride and padding) to ``m`` channels, then kx1 (vertical ones) to the outputs."""
    k, (sh, sw), (ph, pw), (dh, dw) = _parts(conv)
    horizontal = _conv(conv.in_channels, m, (1, k), (1, sw), (0, pw), (1, dw))
    vertical = _conv(m, conv.out_channels, (k, 1), (sh, 1), (ph, 0), (dh, 1), bias=conv.bias is not None)
    _init([horizontal], vertical)
    return nn.Sequential(horizontal, *_middle(m, mid), vertical)


class BasisConv(nn.Module):
    """``m`` basis filters (half 1xk, half kx1) side by side, then a 1x1 linear combination."""

    def __init__(self, conv: nn.Conv2d, m: int, mid: str) -> None:
        super().__init__()
        k, stride, (ph, pw), (dh, dw) = _parts(conv)
        half = (m + 1) // 2
        self.horizontal = _conv(conv.in_channels, half, (1, k), stride, (0, pw), (1, dw))
        self.vertical = _conv(conv.in_channels, m - half, (k, 1), stride, (ph, 0), (dh, 1))
        self.middle = nn.Sequential(*_middle(m, mid))
        self.combine = nn.Conv2d(m, conv.out_channels, 1, bias=conv.bias is not None)
        _init([self.horizontal, self.vertical], self.combine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(self.middle(torch.cat([self.horizontal(x), self.vertical(x)], dim=1)))


def eligible(conv: nn.Module) -> bool:
    """A square kxk convolution with k > 1 and no groups."""
    return (
        isinstance(conv, nn.Conv2d)
        and conv.groups == 1
        and conv.kernel_size[0] == conv.kernel_size[1] > 1
        and isinstance(conv.padding, tuple)
    )


class LowRank(ArchTransformMethod):
    sites = ("kxk convolutions",)
    options = {
        "variant": Option(
            "sequential", "sequential (1xk then kx1) or basis (1xk and kx1 basis filters + 1x1 combination)", VARIANTS
        ),
        "rank": Option(1.0, "intermediate channels m as a fraction of min(C_in, C_out)", constraint=POSITIVE),
        "mid": Option("none", "between the two parts: none (a linear low-rank filter) or bn-relu", MIDS),
    }

    def width(self, conv: nn.Conv2d) -> int:
        least = 2 if self.opts["variant"] == "basis" else 1
        return max(least, round(self.opts["rank"] * min(conv.in_channels, conv.out_channels)))

    def transform(self, model: nn.Module) -> dict:
        targets = [(name, m) for name, m in model.named_modules() if eligible(m)]
        if not targets:
            raise UsageError(
                f"lowrank: architecture '{getattr(model, 'arch_name', type(model).__name__)}' has no "
                f"kxk convolution (k > 1) to replace"
            )
        for name, conv in targets:
            m = self.width(conv)
            new = (
                sequential_pair(conv, m, self.opts["mid"])
                if self.opts["variant"] == "sequential"
                else BasisConv(conv, m, self.opts["mid"])
            )
            model.set_submodule(name, new)
        return {"variant": self.opts["variant"], "replaced": len(targets), "layers": [n for n, _ in targets]}
