"""``cbam``: Convolutional Block Attention Module (Woo et al., 2018), timm's ``CbamModule``.

Channel gate (shared MLP on average- and max-pooled vectors, summed, sigmoid) then spatial gate (channel
max and mean, 7x7 conv, BN, sigmoid), in every residual block after the last BN, before the residual add.
``mlp_bias=True`` reproduces the paper's 26.24M on ResNet-50 (timm's default has no MLP biases).

``init=official`` (default) follows the official code (Jongchan/attention-module, MODELS/cbam.py and
MODELS/model_resnet.py): the spatial gate's BatchNorm has momentum 0.01 and gamma zero (the gate starts at
sigmoid(0) = 0.5 everywhere), its 7x7 conv is kaiming normal (fan_out), every bias is zero; the shared MLP's
weights keep PyTorch's default (the official code's are ``nn.Linear``, whose default timm's 1x1 convs share).
``init=pytorch`` keeps PyTorch's defaults throughout (the behaviour before issue 11).
"""

from __future__ import annotations

from timm.layers.cbam import CbamModule
from torch import nn

from harness.api import COUNT, Option
from harness.kits.attention import INIT_OPTION, AttentionMethod, kaiming_conv_zero_bias


class CBAM(AttentionMethod):
    options = {
        **AttentionMethod.options,
        "reduction": Option(16, "channel reduction ratio r of the shared MLP", constraint=COUNT),
        "kernel_size": Option(7, "kernel of the spatial gate's convolution", constraint=COUNT),
        "mlp_bias": Option(True, "biases in the shared MLP (True reproduces the paper's 26.24M)"),
        "init": INIT_OPTION,
    }

    def make_module(self, channels: int) -> nn.Module:
        return CbamModule(
            channels,
            rd_ratio=1 / self.opts["reduction"],
            rd_divisor=1,
            spatial_kernel_size=self.opts["kernel_size"],
            mlp_bias=self.opts["mlp_bias"],
        )

    def init_official(self, module: nn.Module) -> None:
        conv, bn = module.get_submodule("spatial.conv.conv"), module.get_submodule("spatial.conv.bn")  # ConvNormAct
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
        kaiming_conv_zero_bias(module, convs=[conv])
        nn.init.zeros_(bn.weight)
        bn.momentum = 0.01
