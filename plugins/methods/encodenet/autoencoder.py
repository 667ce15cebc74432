"""The converting autoencoder: the baseline's feature levels as encoder, a decoder derived from their shapes.

Decoder (no U-Net skips, which would let it bypass the encoder): from the encoder's last feature back to
the stem's, one block per feature, upsample to the previous feature's size when it differs (x2 for the
usual stride-2 levels; exact sizes, so odd sizes such as 28 -> 14 -> 7 -> 3 work too) + 3x3 conv + BN +
ReLU, then up to the input size if the stem downsamples, and a linear 3x3 conv to the input channels: the
output lives in the normalised input space and is compared with the target by MSE.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from harness.api import LevelClassifier, LevelInfo, Objective, StepOutput


def _block(cin: int, cout: int, size: int | None) -> list[nn.Module]:
    up = [nn.Upsample(size=(size, size), mode="nearest")] if size else []
    return [*up, nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def build_decoder(level_info: list[LevelInfo], split: int, in_chans: int, input_size: int) -> nn.Sequential:
    """A decoder for the encoder made of the stem and the first ``split`` levels."""
    feats = level_info[: split + 1]
    layers: list[nn.Module] = []
    c, s = feats[-1].channels, feats[-1].size
    for prev in reversed(feats[:-1]):
        layers += _block(c, prev.channels, prev.size if prev.size != s else None)
        c, s = prev.channels, prev.size
    if s != input_size:
        layers += _block(c, c, input_size)
    layers.append(nn.Conv2d(c, in_chans, 3, padding=1))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """The stem and the first ``split`` levels of a level classifier (shared modules, not copies).

    ``classifier`` is that whole classifier (not registered as a submodule): stage 3 copies it, trained
    encoder included, and trains its classification part.
    """

    classifier: LevelClassifier

    def __init__(self, model: LevelClassifier, split: int) -> None:
        super().__init__()
        self.stem = model.stem
        self.levels = nn.ModuleList(model.levels[:split])
        self.split = split
        object.__setattr__(self, "classifier", model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for level in self.levels:
            x = level(x)
        return x


class ConvertingAutoencoder(nn.Module):
    def __init__(self, encoder: Encoder, decoder: nn.Sequential) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class ConversionObjective(Objective):
    """MSE from each input to its target. Batches hold input and target stacked along channels, so the
    shared pipeline crops and flips both identically."""

    def __init__(self, autoencoder: ConvertingAutoencoder, in_chans: int) -> None:
        super().__init__(autoencoder)
        self.in_chans = in_chans

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        x, target = images[:, : self.in_chans], images[:, self.in_chans :]
        return StepOutput(losses={"reconstruction": F.mse_loss(self.model(x).float(), target.float())})


class FrozenEncoderObjective(Objective):
    """Stage 2: cross-entropy through the whole model with the encoder frozen (parameters and BatchNorm
    statistics); only the classification part learns. ``frozen=False`` is the fine-tuning variant."""

    def __init__(self, model: LevelClassifier, split: int, frozen: bool = True) -> None:
        super().__init__(model)
        self.split = split
        if frozen:
            self.freeze(model.stem)
            for level in model.levels[:split]:
                self.freeze(level)
