"""ResMLP for CIFAR-sized images (Touvron et al., "ResMLP: Feedforward networks for image classification
with data-efficient training"), built from timm's own ResMLP pieces (``timm.models.mlp_mixer``: ``MlpMixer``
with ``ResBlock`` and the ``Affine`` normalisation), not rewritten.

The image is cut into ``patch x patch`` patches (default 4: 64 patches at 32x32) linearly embedded to
``dim`` channels; each of ``depth`` residual blocks mixes patches with one linear layer (the same for every
channel) and channels with a two-layer MLP (``mlp_ratio x dim`` hidden, GELU), each behind an affine
"normalisation" and a LayerScale; average pooling and a linear classifier follow. Defaults: depth 12 and
width 384, the paper's ResMLP-S12 layout. Options: ``resmlp:depth=N,dim=N,patch=N,mlp_ratio=F,
init_values=F``; LayerScale's initial value defaults to timm's for its ResMLP-12/24/36 (1e-4 up to depth 12,
1e-5 up to 24, 1e-6 deeper).

Deviations, out of scope here: the paper's training (heavy augmentation with RandAugment, Mixup, CutMix,
repeated augmentation, stochastic depth, LAMB optimiser, optional distillation from a convnet) is not used;
the model is trained with the run's recipe and data pipeline (random crop and flip) like every other
architecture, so its accuracy is that of ResMLP under the benchmark's recipe, not the paper's. The model has
no level interface (its features are token sequences): methods that need levels refuse it.
"""

from __future__ import annotations

from functools import partial
from typing import cast

from timm.models.mlp_mixer import Affine, MlpMixer, ResBlock
from torch import nn

from harness.api import ArchSpec, UsageError, parse_arch_options, positive
from plugins.archs.timm_adapter import named

DEFAULTS = {"depth": 12, "dim": 384, "patch": 4, "mlp_ratio": 4.0, "init_values": 0.0}  # 0: by depth, as timm


def layerscale_init(depth: int) -> float:
    """timm's LayerScale initial values of resmlp_12/24/36_224."""
    return 1e-4 if depth <= 12 else 1e-5 if depth <= 24 else 1e-6


def resmlp(spec: ArchSpec) -> nn.Module:
    opts = parse_arch_options(spec.name, spec.arg, DEFAULTS)
    positive(spec.name, opts, "depth", "dim", "patch", "mlp_ratio")
    if spec.input_size % opts["patch"]:
        raise UsageError(f"{spec.name}: patch size {opts['patch']} does not divide the {spec.input_size}px input")
    init = opts["init_values"] or layerscale_init(opts["depth"])
    model = MlpMixer(
        num_classes=spec.num_classes,
        img_size=spec.input_size,
        in_chans=spec.in_chans,
        patch_size=opts["patch"],
        num_blocks=opts["depth"],
        embed_dim=opts["dim"],
        mlp_ratio=opts["mlp_ratio"],
        norm_layer=Affine,
        block_layer=cast(type[nn.Module], partial(ResBlock, init_values=init)),
    )  # called like a class
    return named(model, spec.name)
