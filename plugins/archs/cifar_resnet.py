"""CIFAR ResNets of the CRD benchmark (RepDistiller): resnet8/14/20/32/44/56/110, resnet8x4, resnet32x4.

BasicBlock, widths [16, 16, 32, 64] (x4: [32, 64, 128, 256]), projection shortcut 1x1 conv + BN, Kaiming
(fan_out) initialisation of convolutions. Deviation: the reference's ``AvgPool2d(8)`` is an adaptive
average pool here, identical on 32x32 input and also valid for other input sizes. Each block has an
``attn`` slot (identity by default) after its last BN and before the residual add, declared as the
architecture's block attention sites; the first convolution of each stride-2 block and its projection
shortcut's convolution are its downsampling sites.
"""

from __future__ import annotations


import torch
from torch import nn
from torch.nn import functional as F

from harness.api import ArchSpec, ClassifierHead, LevelClassifier


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attn: nn.Module = nn.Identity()
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    @property
    def out_channels(self) -> int:
        return self.bn2.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.attn(self.bn2(self.conv2(out)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


def cifar_resnet(spec: ArchSpec, depth: int, widths: tuple[int, int, int, int]) -> LevelClassifier:
    if (depth - 2) % 6:
        raise ValueError("CIFAR ResNet depth must be 6n+2")
    n = (depth - 2) // 6
    stem = nn.Sequential(
        nn.Conv2d(spec.in_chans, widths[0], kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
    )
    levels: list[list[BasicBlock]] = []
    cin = widths[0]
    for i, planes in enumerate(widths[1:]):
        blocks = []
        for j in range(n):
            blocks.append(BasicBlock(cin, planes, stride=2 if (i > 0 and j == 0) else 1))
            cin = planes
        levels.append(blocks)
    model = LevelClassifier(
        stem,
        [nn.Sequential(*blocks) for blocks in levels],
        ClassifierHead(cin, spec.num_classes),
        spec=spec,
        level_names=["layer1", "layer2", "layer3"],
        family="cifar_resnet",
    )
    model.declare_block_sites(
        [
            (f"levels.{i}.{j}.attn", block.out_channels)
            for i, level in enumerate(levels)
            for j, block in enumerate(level)
        ]
    )
    model.declare_downsampling_sites(
        [
            f"levels.{i}.{j}.{conv}"
            for i, level in enumerate(levels)
            for j, block in enumerate(level)
            if block.conv1.stride != (1, 1)
            for conv in ("conv1", "downsample.0")
        ]
    )
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return model
