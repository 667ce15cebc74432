"""``eca``: Efficient Channel Attention (Wang et al., CVPR 2020), timm's ``EcaModule`` in every residual block.

Global average pool, a 1-D convolution of kernel k across channels (no bias), sigmoid, channel scale; after
the block's last BN, before the residual add (the official ``ECABasicBlock``/``ECABottleneck``). k adapts to
the channel count C as in the paper, k = |log2(C)/gamma + b/gamma|_odd with gamma = 2, b = 1
(``kernel_size=0``, our default). timm's formula, used here, takes the integer part and rounds an even one
up: the paper's nearest odd number except at ties (t even: timm takes t + 1), and never below 3 (the paper
has no minimum; it matters only for C <= 8). The official code (BangguWu/ECANet, ``eca_resnet.py``) passes a
fixed ``k_size=[3, 3, 3, 3]`` instead; the adaptive k is 3 for C <= 64 (the CIFAR ResNets' widths, where it
is the official code's), 5 for 128 <= C <= 1024 and 7 for C = 2048. ``kernel_size=K`` (odd) fixes k for every site.
"""

from __future__ import annotations

from timm.layers import EcaModule
from torch import nn

from harness.api import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, Option, UsageError
from harness.kits.attention import AttentionMethod


class ECA(AttentionMethod):
    options = {
        **AttentionMethod.options,
        "kernel_size": Option(
            0,
            "kernel k of the 1-D convolution: 0 adapts it to the channels (the paper's psi(C)), an odd K fixes it",
            constraint=NON_NEGATIVE_INT,
        ),
        "gamma": Option(2.0, "gamma of the adaptive kernel size", constraint=POSITIVE),
        "beta": Option(1.0, "b of the adaptive kernel size", constraint=NON_NEGATIVE),
    }

    def make_module(self, channels: int) -> nn.Module:
        k = self.opts["kernel_size"]
        if k and k % 2 == 0:
            raise UsageError(f"option {self.name}.kernel_size: {k} is even; ECA's kernel is odd (or 0: adaptive)")
        # timm adapts k when given the channel count, and keeps kernel_size when not (the module needs neither)
        return EcaModule(None if k else channels, kernel_size=k or 3, gamma=self.opts["gamma"], beta=self.opts["beta"])
