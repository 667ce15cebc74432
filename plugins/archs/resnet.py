"""ResNet-18/34/50/101 with the CIFAR stem, built on timm's ResNet (not rewritten).

The CIFAR stem replaces timm's 7x7 stride-2 convolution and max-pool with a 3x3 stride-1 convolution and
no pooling (as in the CIFAR versions used by the attention-module and KD literature); everything else is
timm's ``resnet18/34/50/101``. With 100 classes ResNet-50 has 23,705,252 parameters. Deviation from timm's
defaults: the last BN of each block is not zero-initialised (``zero_init_last=False``), as in torchvision
and the CIFAR ResNet-50s of the attention-module literature. Each block exposes
timm's ``se`` slot (after the last BN, before the residual add), declared as its block attention sites;
its strided convolutions (``conv1`` of a basic block, ``conv2`` of a bottleneck) and projection shortcuts
are its downsampling sites. Each one's default teacher (for distillation methods run without ``--teacher``) is
the next larger ResNet of the family: 18 <- 34 <- 50 <- 101.
"""

from __future__ import annotations


import timm
from torch import nn

from harness.api import ArchSpec, LevelClassifier
from plugins.archs.timm_adapter import adapt_timm


def cifar_stem_resnet(spec: ArchSpec, variant: str) -> nn.Module:
    model = timm.create_model(
        variant, pretrained=False, num_classes=spec.num_classes, in_chans=spec.in_chans, zero_init_last=False
    )
    stem = model.get_submodule("conv1")
    assert isinstance(stem, nn.Conv2d)
    model.conv1 = conv1 = nn.Conv2d(spec.in_chans, stem.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    leveled = adapt_timm(model, spec, family="resnet")
    assert isinstance(leveled, LevelClassifier)  # a timm ResNet always splits into levels
    leveled.declare_block_sites(
        [
            (f"levels.{i}.{j}.se", last_bn(block).num_features)
            for i, level in enumerate(leveled.levels)
            for j, block in enumerate(level.children())
        ]
    )
    leveled.declare_downsampling_sites(
        [
            f"levels.{i}.{j}.{name}"
            for i, level in enumerate(leveled.levels)
            for j, block in enumerate(level.children())
            for name, conv in strided_convs(block)
        ]
    )
    return leveled


def strided_convs(block: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The block's convolutions that halve the resolution (residual path and projection shortcut)."""
    return [(name, m) for name, m in block.named_modules() if isinstance(m, nn.Conv2d) and m.stride != (1, 1)]


def last_bn(block: nn.Module) -> nn.BatchNorm2d:
    """The block's last BatchNorm on the residual path (``bn3`` of a bottleneck, ``bn2`` of a basic block)."""
    bn = block.get_submodule("bn3" if hasattr(block, "bn3") else "bn2")
    assert isinstance(bn, nn.BatchNorm2d)
    return bn
