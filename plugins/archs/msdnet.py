"""MSDNet for CIFAR (Huang, Chen, Li, Wu, van der Maaten, Weinberger: "Multi-Scale Dense Networks for
Resource Efficient Image Classification", ICLR 2018): a multi-exit architecture.

Three scales (32x32, 16x16, 8x8 on CIFAR) kept side by side; every layer adds ``growth x factor[s]``
channels at each scale s (factors 1, 2, 4), half from the same scale (regular 3x3 convolution) and half from
the finer scale (strided 3x3 convolution), each behind a 1x1 bottleneck of at most ``4 x factor[s]`` times
its output (dense connectivity: a layer's input is concatenated with its output). Scales are dropped from the
finest one as the network gets deeper ("max" pruning: one third of the layers per scale), each drop followed
by a transition (1x1 convolution halving the channels). A classifier (two strided 3x3 convolutions of 128
channels, pooling, linear) sits on the coarsest scale after every block.

Configuration: the paper's text this project had is a summary without the CIFAR settings, so the defaults
are those of the authors' PyTorch code (kalviny/MSDNet-PyTorch, README) for CIFAR-100 *anytime prediction*: 7 blocks, 4
layers in the first and 2 in each further block ("even"), 16 initial channels, growth 6, bottleneck factors 1-2-4,
transition reduction 0.5. Their *budgeted batch* network is ``msdnet:blocks=5,step=1,base=1,stepmode=lin`` (block b has
``step*b + 1`` layers). Options: ``msdnet:blocks=N,step=N,base=N,stepmode=even|lin,channels=N,growth=N``.

Deviations: the classifier's final ``AvgPool2d(2)`` is an adaptive average pool (identical at 32x32, valid
for other sizes); the first layer's convolution takes ``spec.in_chans`` channels; only "max" pruning with
a 1x1 transition is built (the authors' CIFAR setting); ``lin`` is the authors' ``lin_grow``. The network is trained as
the paper does by the ``anytime`` method (weighted sum of the exits' cross-entropies); ``forward`` alone (e.g.
``baseline``) gives the last exit only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.api import ArchSpec, UsageError, parse_arch_options, positive

DEFAULTS = {"blocks": 7, "step": 2, "base": 4, "stepmode": "even", "channels": 16, "growth": 6}
CHOICES = {"stepmode": ("even", "lin")}
SCALE_FACTORS = (1, 2, 4)  # channel factor of each scale (growth and bottleneck), the authors' CIFAR setting
REDUCTION = 0.5
CLASSIFIER_WIDTH = 128


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def bottleneck_conv(cin: int, cout: int, stride: int, bottleneck: int) -> nn.Sequential:
    """1x1 bottleneck to ``min(cin, bottleneck * cout)`` channels, then a 3x3 convolution (BN, ReLU each)."""
    inner = min(cin, bottleneck * cout)
    return nn.Sequential(conv_bn_relu(cin, inner, 1), conv_bn_relu(inner, cout, 3, stride))


class ScaleUnit(nn.Module):
    """One scale of one MSD layer: the input at this scale, concatenated with new features from this scale
    and (unless it is the finest scale of the layer) from the finer scale, downsampled."""

    def __init__(
        self, same_in: int, new: int, same_bottleneck: int, finer_in: int | None = None, finer_bottleneck: int = 1
    ) -> None:
        super().__init__()
        split = finer_in is not None
        self.from_finer = bottleneck_conv(finer_in, new // 2, 2, finer_bottleneck) if finer_in is not None else None
        self.from_same = bottleneck_conv(same_in, new // 2 if split else new, 1, same_bottleneck)

    def forward(self, same: torch.Tensor, finer: torch.Tensor | None) -> torch.Tensor:
        parts = [same]
        if self.from_finer is not None:
            parts.append(self.from_finer(finer))
        parts.append(self.from_same(same))
        return torch.cat(parts, dim=1)


class MSDLayer(nn.Module):
    """Maps the features of ``in_scales`` scales (the coarsest ones) to ``out_scales`` scales, each grown
    by ``growth x factor``. Lists are indexed from the finest scale present."""

    def __init__(self, width: int, growth: int, in_scales: int, out_scales: int) -> None:
        super().__init__()
        n = len(SCALE_FACTORS)
        self.first_in, self.first_out = n - in_scales, n - out_scales
        units = []
        for s in range(self.first_out, n):
            has_finer = s > self.first_in
            units.append(
                ScaleUnit(
                    width * SCALE_FACTORS[s],
                    growth * SCALE_FACTORS[s],
                    SCALE_FACTORS[s],
                    width * SCALE_FACTORS[s - 1] if has_finer else None,
                    SCALE_FACTORS[s - 1] if has_finer else 1,
                )
            )
        self.units = nn.ModuleList(units)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        at = lambda s: feats[s - self.first_in]  # noqa: E731  (feature of absolute scale s)
        return [
            unit(at(s), at(s - 1) if s > self.first_in else None)
            for s, unit in zip(range(self.first_out, len(SCALE_FACTORS)), self.units)
        ]


class Transition(nn.Module):
    """1x1 convolution (BN, ReLU) at every remaining scale, reducing the channels after a scale is dropped."""

    def __init__(self, width: int, reduced: int, scales: int) -> None:
        super().__init__()
        first = len(SCALE_FACTORS) - scales
        self.convs = nn.ModuleList(conv_bn_relu(width * f, reduced * f, 1) for f in SCALE_FACTORS[first:])

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(f) for conv, f in zip(self.convs, feats)]


class FirstLayer(nn.Module):
    """The input at every scale: 3x3 convolution, then one strided 3x3 convolution per coarser scale."""

    def __init__(self, in_chans: int, channels: int) -> None:
        super().__init__()
        widths = [channels * f for f in SCALE_FACTORS]
        self.convs = nn.ModuleList(
            [conv_bn_relu(in_chans, widths[0])]
            + [conv_bn_relu(widths[i - 1], widths[i], 3, 2) for i in range(1, len(widths))]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for conv in self.convs:
            x = conv(x)
            feats.append(x)
        return feats


class ExitClassifier(nn.Module):
    """On the coarsest scale: two strided 3x3 convolutions of 128 channels, average pooling, linear."""

    def __init__(self, cin: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(cin, CLASSIFIER_WIDTH, 3, 2),
            conv_bn_relu(CLASSIFIER_WIDTH, CLASSIFIER_WIDTH, 3, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(CLASSIFIER_WIDTH, num_classes)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.fc(self.features(feats[-1]))


def layers_per_block(opts: dict) -> list[int]:
    """``base`` layers in the first block, then ``step`` (even) or ``step * b + 1`` (lin) in block b."""
    grow = (lambda b: opts["step"]) if opts["stepmode"] == "even" else (lambda b: opts["step"] * b + 1)
    return [opts["base"]] + [grow(b) for b in range(1, opts["blocks"])]


def scales_of_layer(t: int, total: int) -> tuple[int, int]:
    """(input scales, output scales) of layer ``t`` (1-based) of ``total`` under "max" pruning."""
    n = len(SCALE_FACTORS)
    interval = math.ceil(total / n)
    return n - max(0, t - 2) // interval, n - (t - 1) // interval


class MSDNet(nn.Module):
    """Multi-exit: ``forward`` gives the last exit's logits; ``forward_exits`` every exit's."""

    def __init__(self, spec: ArchSpec, opts: dict) -> None:
        super().__init__()
        self.arch_name = spec.name
        self.options = dict(opts)
        self.first = FirstLayer(spec.in_chans, opts["channels"])
        steps = layers_per_block(opts)
        total, t, width = sum(steps), 0, opts["channels"]
        blocks, classifiers = [], []
        for step in steps:
            layers: list[nn.Module] = []
            for _ in range(step):
                t += 1
                in_scales, out_scales = scales_of_layer(t, total)
                layers.append(MSDLayer(width, opts["growth"], in_scales, out_scales))
                width += opts["growth"]
                if in_scales > out_scales:
                    reduced = math.floor(REDUCTION * width)
                    layers.append(Transition(width, reduced, out_scales))
                    width = reduced
            blocks.append(nn.Sequential(*layers))
            classifiers.append(ExitClassifier(width * SCALE_FACTORS[-1], spec.num_classes))
        self.blocks = nn.ModuleList(blocks)
        self.classifiers = nn.ModuleList(classifiers)
        self.layers_per_block = steps
        self._init_weights()

    def _init_weights(self) -> None:
        """The initialisation the authors' PyTorch code writes: conv N(0, sqrt(2 / (k*k*out))), BN 1/0, linear
        biases 0. Deviation: that code calls it only on the blocks' and classifiers' direct children (composite
        modules, none a Conv2d/BatchNorm2d/Linear), so its networks actually start from PyTorch's default
        initialisation; here it is applied to every layer, as written."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    @property
    def num_exits(self) -> int:
        return len(self.blocks)

    def forward_exits(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        feats = self.first(x)
        logits = []
        for block, classifier in list(zip(self.blocks, self.classifiers))[: upto or self.num_exits]:
            feats = block(feats)
            logits.append(classifier(feats))
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.first(x)
        for block in self.blocks:
            feats = block(feats)
        return self.classifiers[-1](feats)


def msdnet(spec: ArchSpec) -> MSDNet:
    opts = parse_arch_options(spec.name, spec.arg, DEFAULTS, CHOICES)
    positive(spec.name, opts, "blocks", "base", "channels", "growth")
    if opts["step"] < (1 if opts["stepmode"] == "even" else 0):
        raise UsageError(f"architecture option {spec.name}.step must be at least 1, got {opts['step']}")
    if opts["growth"] % 2:
        raise UsageError(f"architecture option {spec.name}.growth must be even (half comes from each scale)")
    if spec.input_size < 4 * 2 ** (len(SCALE_FACTORS) - 1):
        raise UsageError(f"{spec.name} needs inputs of at least 16x16, got {spec.input_size}x{spec.input_size}")
    return MSDNet(spec, opts)


DESCRIPTION = (
    "MSDNet (Huang et al., ICLR 2018), CIFAR: 3 scales, an exit after each of 7 blocks (anytime "
    "configuration of the authors' code); train with --methods anytime"
)
