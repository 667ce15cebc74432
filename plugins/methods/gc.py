"""``gc``: the global context block of GCNet (Cao et al., ICCV Workshops 2019), timm's ``GlobalContext``.

Context modelling by attention pooling (1x1 conv C -> 1, softmax over positions, the weighted sum of the
features), a bottleneck transform (1x1 conv C -> C/r, LayerNorm, ReLU, 1x1 conv C/r -> C) and fusion by
addition to every position; in every residual block after the last BN, before the residual add (the
official code's placement, after the block's last norm). The paper's defaults, which are the official
code's (xvjiarui/GCNet, ``mmdet/ops/gcb/context_block.py``, configs ``ratio=1/16``): r = 16, ``att``
pooling, ``channel_add`` fusion, convolutions with biases.

Where timm's defaults differ and what we chose: timm's ``gc`` fuses by scaling (``channel_mul``, sigmoid)
with r = 8 and ``gca`` adds with r = 8: we add with r = 16 (``fusion=scale`` or ``both`` for the other
forms; ``attn:gc``/``attn:gca`` are timm's). C/r is truncated as the official ``int(C * ratio)`` (timm rounds
to nearest; at least 1 here) and the LayerNorm's epsilon is the official ``nn.LayerNorm``'s 1e-5 (timm's
``LayerNorm2d``: 1e-6). ``init=official`` (default) is the official ``reset_parameters``: the attention
conv kaiming normal (fan_in) with zero bias, the last conv of the add transform all zero (weight and bias;
timm zeroes only its weight), so the block starts as the identity; ``init=pytorch``: timm's init.
"""

from __future__ import annotations

from timm.layers import GlobalContext
from torch import nn

from harness.api import COUNT, Option
from harness.kits.attention import INIT_OPTION, AttentionMethod

FUSIONS = ("add", "scale", "both")


class GC(AttentionMethod):
    options = {
        **AttentionMethod.options,
        "reduction": Option(16, "bottleneck ratio r of the transform (C -> C/r -> C)", constraint=COUNT),
        "fusion": Option("add", "add (the paper's channel_add), scale (channel_mul with a sigmoid) or both", FUSIONS),
        "init": INIT_OPTION,
    }

    def make_module(self, channels: int) -> nn.Module:
        fusion = self.opts["fusion"]
        module = GlobalContext(
            channels,
            fuse_add=fusion in ("add", "both"),
            fuse_scale=fusion in ("scale", "both"),
            rd_channels=max(1, int(channels / self.opts["reduction"])),
        )
        for mlp in (module.mlp_add, module.mlp_scale):
            if mlp is not None:
                norm = mlp.get_submodule("norm")
                assert isinstance(norm, nn.LayerNorm)  # timm's LayerNorm2d
                norm.eps = 1e-5
        return module

    def init_official(self, module: nn.Module) -> None:
        nn.init.zeros_(module.get_parameter("conv_attn.bias"))  # timm draws its weight kaiming normal (fan_in)
        if getattr(module, "mlp_add", None) is not None:
            nn.init.zeros_(module.get_parameter("mlp_add.fc2.weight"))
            nn.init.zeros_(module.get_parameter("mlp_add.fc2.bias"))
