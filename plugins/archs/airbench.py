"""The airbench94 network (Keller Jordan, github.com/KellerJordan/cifar10-airbench; "94% on CIFAR-10 in 3.29
seconds on a single GPU", arXiv:2404.00498), with the level interface.

Layers, as airbench94 (``make_net``): a 2x2 convolution without padding, 3 -> 24 channels, with a bias (the
whitening layer, declared: the ``fast`` recipe sets it from training patches and freezes it), GELU; three
conv groups (widths 64, 256, 256), each ``conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU``; a
3x3 max-pool, a linear layer without bias, and the logits scaled by 1/9. Convolutions have no bias; their
default PyTorch initialisation is followed by a Dirac (identity) initialisation of the first ``in`` filters.
BatchNorm: eps 1e-12, running-statistics momentum 0.4 (airbench's ``batchnorm_momentum`` 0.6, in its
convention), the scale frozen at 1 and only the shift trained.

Levels: the three conv groups (32x32 input: 15x15, 7x7, 3x3 maps); the stem is the whitening layer and its GELU.
Attention sites: one per conv group, after its last BN and before its GELU (as a CIFAR ResNet's is after
its last BN). Downsampling sites: the max-pool of each group. Deviations: the final 3x3 max-pool is an
adaptive max-pool (identical on 32x32 input); airbench runs the network in fp16 with channels_last on a GPU,
here it runs in the engine's precision (fp32, or bf16 autocast with ``--amp``).

Width: ``airbench:block1=128,block2=512,block3=512`` (any widths); ``airbench94x2`` doubles every width, a
teacher for knowledge distillation into ``airbench94`` (our choice; airbench has no teacher).
"""

from __future__ import annotations

import torch
from torch import nn

from harness.api import ArchSpec, ClassifierHead, LevelClassifier, parse_arch_options

#: airbench94's ``hyp['net']``
WIDTHS = (64, 256, 256)
BN_MOMENTUM = 0.4  # torch's convention: 1 - airbench's 0.6
BN_EPS = 1e-12
SCALING = 1 / 9
WHITEN_KERNEL = 2


def conv(cin: int, cout: int, kernel: int = 3, padding: int | str = "same", bias: bool = False) -> nn.Conv2d:
    """A convolution with PyTorch's default initialisation, then a Dirac one on its first ``cin`` filters."""
    layer = nn.Conv2d(cin, cout, kernel_size=kernel, padding=padding, bias=bias)
    with torch.no_grad():
        if layer.bias is not None:
            layer.bias.zero_()
        nn.init.dirac_(layer.weight[:cin])
    return layer


def batch_norm(channels: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)
    norm.weight.requires_grad_(False)
    return norm


class ConvGroup(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = conv(cin, cout)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = batch_norm(cout)
        self.conv2 = conv(cout, cout)
        self.norm2 = batch_norm(cout)
        self.attn: nn.Module = nn.Identity()
        self.activ = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.attn(self.norm2(self.conv2(x))))


class ScaledHead(ClassifierHead):
    """Global max-pool, flatten, a linear layer without bias, the logits times ``scale``."""

    def __init__(self, in_features: int, num_classes: int, scale: float = SCALING) -> None:
        super().__init__(in_features, num_classes)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(in_features, num_classes, bias=False)
        self.scale = scale

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return super().forward(feat) * self.scale


def build(spec: ArchSpec, widths: tuple[int, int, int]) -> LevelClassifier:
    whiten_width = 2 * spec.in_chans * WHITEN_KERNEL**2
    stem = nn.Sequential(conv(spec.in_chans, whiten_width, WHITEN_KERNEL, padding=0, bias=True), nn.GELU())
    levels, cin = [], whiten_width
    for width in widths:
        levels.append(ConvGroup(cin, width))
        cin = width
    model = LevelClassifier(
        stem,
        levels,
        ScaledHead(cin, spec.num_classes),
        spec=spec,
        level_names=["block1", "block2", "block3"],
        family="airbench",
    )
    model.declare_whitening_layer("stem.0")
    model.declare_block_sites([(f"levels.{i}.attn", width) for i, width in enumerate(widths)])
    model.declare_downsampling_sites([f"levels.{i}.pool" for i in range(len(widths))])
    return model


def airbench(spec: ArchSpec, widths: tuple[int, int, int] = WIDTHS) -> LevelClassifier:
    """A named variant (``airbench94``, ``airbench94x2``) or ``airbench:block1=,block2=,block3=``."""
    if spec.arg is not None:
        defaults = dict(zip(("block1", "block2", "block3"), widths))
        opts = parse_arch_options(spec.name, spec.arg, defaults)
        widths = (opts["block1"], opts["block2"], opts["block3"])
    return build(spec, widths)
