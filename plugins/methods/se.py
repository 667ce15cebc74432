"""``se``: Squeeze-and-Excitation (Hu et al., 2018), timm's ``SEModule`` in every residual block.

Global average pool, 1x1 C -> C/r, ReLU, 1x1 C/r -> C, sigmoid, channel scale; after the block's last BN,
before the residual add. Configured to match the paper's parameter count: no biases in the two 1x1
convolutions (timm's default has them, which gives the CBAM count instead) and no rounding of C/r to a
multiple of 8 (timm's default; it would change the reduction on narrow CIFAR ResNets).
"""

from __future__ import annotations

from timm.layers import SEModule
from torch import nn

from harness.api import COUNT, Option
from harness.kits.attention import AttentionMethod


class SE(AttentionMethod):
    options = {
        **AttentionMethod.options,
        "reduction": Option(16, "channel reduction ratio r (hidden width C/r)", constraint=COUNT),
        "bias": Option(False, "biases in the two 1x1 convolutions (False reproduces the paper's 26.22M)"),
    }

    def make_module(self, channels: int) -> nn.Module:
        return SEModule(channels, rd_ratio=1 / self.opts["reduction"], rd_divisor=1, bias=self.opts["bias"])
