"""``cbam``: Convolutional Block Attention Module (Woo et al., 2018), timm's ``CbamModule``.

Channel gate (shared MLP on average- and max-pooled vectors, summed, sigmoid) then spatial gate (channel
max and mean, 7x7 conv, BN, sigmoid), in every residual block after the last BN, before the residual add.
``mlp_bias=True`` reproduces the paper's 26.24M on ResNet-50 (timm's default has no MLP biases).
"""

from __future__ import annotations

from timm.layers.cbam import CbamModule
from torch import nn

from harness import hookimpl
from harness.kits.attention import AttentionMethod
from harness.methods import Option


class CBAM(AttentionMethod):
    summary = "CBAM channel + spatial gates in every residual block (timm CbamModule)"
    options = {
        **AttentionMethod.options,
        "reduction": Option(16, "channel reduction ratio r of the shared MLP"),
        "kernel_size": Option(7, "kernel of the spatial gate's convolution"),
        "mlp_bias": Option(True, "biases in the shared MLP (True reproduces the paper's 26.24M)"),
    }

    def make_module(self, channels: int) -> nn.Module:
        return CbamModule(channels, rd_ratio=1 / self.opts["reduction"], rd_divisor=1,
                          spatial_kernel_size=self.opts["kernel_size"], mlp_bias=self.opts["mlp_bias"])


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register("cbam", CBAM, description=CBAM.summary)
