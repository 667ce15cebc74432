"""CIFAR VGGs with BatchNorm of the CRD benchmark (RepDistiller): vgg8/11/13/16/19.

Five conv blocks (3x3 conv with bias + BN + ReLU), max-pool between blocks 0-3, and one
``Linear(512, C)`` after global average pooling. As in the reference, the pool before block 4 is applied
only to 64-pixel inputs (so a 32x32 input reaches block 4 at 4x4). Initialisation as in the reference:
conv weights N(0, sqrt(2/(k*k*out))), biases 0, Linear N(0, 0.01).

Levels: the stem is block 0 (with its ReLU); levels 1-4 are [max-pool] + block + ReLU, so
``forward_levels`` yields the reference's f0..f4 features. VGG has no residual blocks: its declared block
attention sites are after each conv level (the stem included); its max-pools are its downsampling sites.
"""

from __future__ import annotations

import math

from torch import nn

from harness.api import ArchSpec, ClassifierHead, LevelClassifier


def _block(widths: list[int], cin: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(cin, w, kernel_size=3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        cin = w
    return layers  # ends with the ReLU the reference applies after the block


def cifar_vgg(spec: ArchSpec, config: list[list[int]]) -> LevelClassifier:
    stem = nn.Sequential(*_block(config[0], spec.in_chans))
    levels = []
    for i in range(1, 5):
        pool = [nn.MaxPool2d(kernel_size=2, stride=2)] if (i < 4 or spec.input_size == 64) else []
        levels.append(nn.Sequential(*pool, *_block(config[i], config[i - 1][-1])))
    model = LevelClassifier(
        stem,
        levels,
        ClassifierHead(config[4][-1], spec.num_classes),
        spec=spec,
        level_names=["block1", "block2", "block3", "block4"],
        family="cifar_vgg",
    )
    model.declare_block_sites([("stem", config[0][-1])] + [(f"levels.{i}", config[i + 1][-1]) for i in range(4)])
    model.declare_downsampling_sites(
        [f"levels.{i}.0" for i, level in enumerate(levels) if isinstance(level[0], nn.MaxPool2d)]
    )
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0, math.sqrt(2.0 / n))
            assert m.bias is not None  # every convolution here has one
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return model
