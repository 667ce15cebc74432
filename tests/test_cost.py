"""MACs against hand-computed values (conv: k*k*cin*cout*H*W/groups, linear: in*out), gates counted."""

from __future__ import annotations

import torch
from timm.layers import SEModule

from harness.models.cost import count_cost
from harness.models.levels import ArchSpec
from harness.plugins.manager import load_plugins

PLUGINS = load_plugins(entry_points=False, warn=False)
CPU = torch.device("cpu")


def conv(k: int, cin: int, cout: int, size: int, groups: int = 1) -> int:
    """MACs of a k x k convolution whose output is size x size."""
    return k * k * cin * cout * size * size // groups


def cifar_resnet20(classes: int) -> int:
    """RepDistiller's resnet20: 3x3 stem to 16, three stages of 3 basic blocks (16, 32, 64 channels at 32, 16, 8),
    1x1 stride-2 convolution shortcuts where the width changes, linear head."""
    total = conv(3, 3, 16, 32)
    cin = 16
    for width, size in ((16, 32), (32, 16), (64, 8)):
        for _ in range(3):
            total += conv(3, cin, width, size) + conv(3, width, width, size)
            if cin != width:
                total += conv(1, cin, width, size)
            cin = width
    return total + 64 * classes


def resnet50_cifar_stem(classes: int) -> int:
    """timm's ResNet-50 with the CIFAR stem (3x3 conv, no max pool): bottlenecks [3, 4, 6, 3] of widths
    64-512 (x4 out) at 32, 16, 8, 4; stride on the 3x3 conv, 1x1 projection shortcut in each stage's first block."""
    total = conv(3, 3, 64, 32)
    cin, size_in = 64, 32
    for width, blocks, size in ((64, 3, 32), (128, 4, 16), (256, 6, 8), (512, 3, 4)):
        for block in range(blocks):
            total += conv(1, cin, width, size_in) + conv(3, width, width, size) + conv(1, width, 4 * width, size)
            if block == 0:
                total += conv(1, cin, 4 * width, size)
            cin, size_in = 4 * width, size
    return total + 2048 * classes


def macs_of(arch: str, classes: int) -> tuple[int, int]:
    cost = count_cost(PLUGINS.archs.resolve(arch).obj(ArchSpec(arch, classes)), (3, 32, 32), CPU)
    return cost.macs, cost.flops


def test_resnet20_macs_by_hand() -> None:
    expected = cifar_resnet20(10)
    assert expected == 40_813_184  # 40.55M with parameter-free (option A) shortcuts, + 262,144 for the 1x1 ones
    assert macs_of("resnet20", 10) == (expected, 2 * expected)  # no gates: FLOPs are exactly 2 per MAC


def test_resnet50_cifar_stem_macs_by_hand() -> None:
    expected = resnet50_cifar_stem(100)
    assert expected == 1_298_014_208  # the literature's 1.30 G
    assert macs_of("resnet50", 100) == (expected, 2 * expected)


def test_gating_operations_are_counted_as_macs_not_flops() -> None:
    c, size, r = 64, 8, 16
    se = SEModule(c, rd_ratio=1 / r, rd_divisor=1, bias=False)
    cost = count_cost(se, (c, size, size), CPU)
    mlp = 2 * c * (c // r)  # the two 1x1 convolutions on the pooled vector
    assert cost.flops == 2 * mlp
    assert cost.macs == mlp + c + c * size * size  # + sigmoid on C values + the channel scale on C x H x W
