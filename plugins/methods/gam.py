"""``gam`` and ``gam-gc``: Global Attention Mechanism (Liu, Shao, Hoffmann, 2021). No official code exists.

Channel submodule: a two-layer MLP (C -> C/r -> C, ReLU) applied at every pixel (no pooling), sigmoid,
multiply. Spatial submodule: 7x7 conv C -> C/r, BN, ReLU, 7x7 conv C/r -> C, BN, sigmoid, multiply.
Sequential (channel then spatial), in every residual block after the last BN, before the residual add.
Linear and conv layers have biases, as in the widely used public re-implementation. With r = 16 on
ResNet-50 (CIFAR stem, 100 classes) this gives 149.52M parameters against the paper's 149.47M.

``gam-gc`` is the group-convolution variant the paper labels "gc": both 7x7 convolutions with groups = 4
and a channel shuffle after the first one (so the groups of the second see every group of the first):
57.09M against the paper's 57.05M. The paper does not specify the variant further; the exact placement of
the shuffle is our choice.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.api import COUNT, Option
from harness.kits.attention import AttentionMethod


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class GAMModule(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, groups: int = 1, shuffle: bool = False) -> None:
        super().__init__()
        hidden = max(groups, channels // reduction // groups * groups)
        self.channel = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.spatial = nn.Sequential(
            nn.Conv2d(channels, hidden, 7, padding=3, groups=groups),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            ChannelShuffle(groups) if shuffle and groups > 1 else nn.Identity(),
            nn.Conv2d(hidden, channels, 7, padding=3, groups=groups),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel_gate = self.channel(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = x * torch.sigmoid(channel_gate)
        return x * torch.sigmoid(self.spatial(x))


class GAM(AttentionMethod):
    options = {
        **AttentionMethod.options,
        "reduction": Option(16, "reduction rate r (r=16 reproduces the paper's parameter counts)", constraint=COUNT),
        "groups": Option(1, "groups of both 7x7 convolutions", constraint=COUNT),
        "shuffle": Option(False, "channel shuffle between the two grouped convolutions"),
    }

    def make_module(self, channels: int) -> nn.Module:
        return GAMModule(channels, self.opts["reduction"], self.opts["groups"], self.opts["shuffle"])


class GAMGroupConv(GAM):
    options = {
        **GAM.options,
        "groups": Option(4, "groups of both 7x7 convolutions", constraint=COUNT),
        "shuffle": Option(True, "channel shuffle between the two grouped convolutions"),
    }
