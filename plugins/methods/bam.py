"""``bam``: Bottleneck Attention Module (Park et al., 2018), between levels (not in timm).

Channel branch: global average pool, Linear C -> C/r, BN, ReLU, Linear C/r -> C. Spatial branch: 1x1 conv
to C/r + BN + ReLU, two 3x3 convs with dilation d + BN + ReLU, 1x1 conv to one channel. Both branches are
broadcast to C x H x W. Fusion: the official code computes ``x * (1 + sigmoid(channel * spatial))``
(``fusion=product``, our default); the paper writes ``sigmoid(channel + spatial)`` (``fusion=sum``).
Placed after every level but the last (after levels 1-3 of a ResNet-50: three modules, 358,067 parameters).

``init=official`` (default) follows the official code (Jongchan/attention-module, MODELS/model_resnet.py):
convolution weights kaiming normal (fan_out), every bias zero (convolutions, linear layers, BatchNorm);
linear weights and BatchNorm gammas (1) keep PyTorch's defaults, BatchNorm momentum stays 0.1.
``init=pytorch`` keeps PyTorch's defaults throughout (the behaviour before issue 11).
"""

from __future__ import annotations

import torch
from torch import nn

from harness.api import COUNT, Option
from harness.kits.attention import INIT_OPTION, AttentionMethod, kaiming_conv_zero_bias


def conv_bn_relu(cin: int, cout: int, kernel: int, dilation: int = 1) -> list[nn.Module]:
    pad = dilation * (kernel - 1) // 2
    return [nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class BAMModule(nn.Module):
    def __init__(self, channels: int, reduction: int = 16, dilation: int = 4, fusion: str = "product") -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fusion = fusion
        self.channel = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
        )
        self.spatial = nn.Sequential(
            *conv_bn_relu(channels, hidden, 1),
            *conv_bn_relu(hidden, hidden, 3, dilation),
            *conv_bn_relu(hidden, hidden, 3, dilation),
            nn.Conv2d(hidden, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = self.channel(x)[:, :, None, None]
        spatial = self.spatial(x)
        combined = channel * spatial if self.fusion == "product" else channel + spatial
        return x * (1 + torch.sigmoid(combined))


class BAM(AttentionMethod):
    default_placement = "level"
    options = {
        **AttentionMethod.options,
        "reduction": Option(16, "reduction ratio r of both branches", constraint=COUNT),
        "dilation": Option(4, "dilation of the spatial branch's two 3x3 convolutions", constraint=COUNT),
        "fusion": Option("product", "product (official code) or sum (the paper's equation)", ("product", "sum")),
        "init": INIT_OPTION,
    }

    def make_module(self, channels: int) -> nn.Module:
        return BAMModule(channels, self.opts["reduction"], self.opts["dilation"], self.opts["fusion"])

    def init_official(self, module: nn.Module) -> None:
        kaiming_conv_zero_bias(module)
