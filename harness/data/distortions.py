"""Image distortions: additive Gaussian noise and Gaussian blur, for evaluation and for training streams.

One definition serves both uses: ``bench run --eval-noise`` / ``--eval-distort`` measure every deployed
model on a distorted copy of the test set (:func:`distorted_accuracy`), and a method that trains on
distorted images (filter-level fine-tuning) draws its batches from :class:`DistortedTrainStream`.

A distortion is written ``KIND:LEVEL``:

* ``noise:S``: add Gaussian noise of standard deviation ``S`` in [0, 1] pixel units (``noise:0.1`` is 25.5
  grey levels), then clip to [0, 1];
* ``blur:S``: Gaussian blur of standard deviation ``S`` pixels (torchvision's ``gaussian_blur``, kernel
  ``2 * ceil(3 S) + 1`` capped at the image size, reflect padding).

Distortions act on images in [0, 1] before the run's per-channel normalisation, and the distorted pixels are
not re-quantised to 8 bits. Noise is deterministic: batch ``b`` of stream ``s`` under seed ``seed`` draws its
noise from a CPU generator seeded by (seed, distortion, stream, b) alone, so every model evaluated with the
same seed sees exactly the same noisy images, on any device and whatever ran before.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from harness.core.errors import UsageError
from harness.data.pipeline import Normalizer, TrainStream

KINDS = {
    "noise": "additive Gaussian noise, sigma in [0, 1] pixel units, clipped to [0, 1]",
    "blur": "Gaussian blur, sigma in pixels",
}


@dataclass(frozen=True)
class Distortion:
    """One distortion at one level (see the module docstring)."""

    kind: str
    level: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"unknown distortion '{self.kind}'; known: {', '.join(KINDS)} (e.g. noise:0.1, blur:1)")
        if not math.isfinite(self.level) or self.level < 0:
            raise UsageError(f"distortion {self.kind}: the level must be a finite number >= 0, got {self.level}")

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.level:g}"

    def apply(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``images``: float (N, C, H, W) in [0, 1]; returns the distorted images (a new tensor)."""
        if self.level == 0:
            return images.clone()
        if self.kind == "noise":
            noise = torch.randn(images.shape, generator=generator, dtype=torch.float32)
            return (images + self.level * noise.to(images.device, images.dtype)).clamp_(0, 1)
        size = min(2 * math.ceil(3 * self.level) + 1, _largest_odd(min(images.shape[-2:])))
        return TF.gaussian_blur(images, [size, size], [self.level, self.level])

    def generator(self, seed: int, stream: str, index: int) -> torch.Generator:
        """The CPU generator of batch ``index`` of ``stream`` (e.g. ``"test"``) under ``seed``."""
        tag = zlib.crc32(f"{self.name}|{stream}".encode())
        return torch.Generator().manual_seed((seed * 1_000_003 + tag * 7919 + index) % (2**63))


def _largest_odd(n: int) -> int:
    return n if n % 2 else n - 1


def parse_distortion(text: str) -> Distortion:
    """``noise:0.1`` -> Distortion("noise", 0.1); a one-line UsageError otherwise."""
    kind, sep, level = text.strip().partition(":")
    if not sep:
        raise UsageError(f"distortion {text!r}: expected KIND:LEVEL, e.g. noise:0.1 or blur:1.0")
    try:
        value = float(level)
    except ValueError:
        raise UsageError(f"distortion {text!r}: level {level!r} is not a number") from None
    return Distortion(kind.strip(), value)


def parse_distortions(text: str) -> list[Distortion]:
    """``noise:0.05,noise:0.1,blur:1`` -> distortions, in order, each once."""
    items = [parse_distortion(t) for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"no distortion in {text!r}: expected KIND:LEVEL[,KIND:LEVEL...]")
    return unique(items)


def noise_levels(text: str) -> list[Distortion]:
    """``0.05,0.1`` (``--eval-noise``) -> noise distortions at these sigmas."""
    return parse_distortions(",".join(f"noise:{t.strip()}" for t in text.split(",") if t.strip()))


def unique(items: list[Distortion]) -> list[Distortion]:
    seen: dict[str, Distortion] = {}
    for d in items:
        seen.setdefault(d.name, d)
    return list(seen.values())


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (or 0-255 float) images -> float in [0, 1]."""
    return images.float().div(255)


@torch.no_grad()
def distorted_accuracy(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    distortion: Distortion,
    *,
    normalizer: Normalizer,
    seed: int,
    device: torch.device,
    batch_size: int = 512,
    channels_last: bool = False,
    amp: bool = False,
) -> float:
    """Top-1 accuracy (%) of ``model`` on ``images`` (uint8, N C H W) distorted by ``distortion``."""
    was_training = model.training
    model.eval()
    correct = 0
    for b, start in enumerate(range(0, int(labels.numel()), batch_size)):
        batch = to_unit(images[start : start + batch_size].to(device))
        x = normalizer(distortion.apply(batch, distortion.generator(seed, "test", b)) * 255)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        correct += int((logits.argmax(1) == labels[start : start + batch_size].to(device)).sum())
    model.train(was_training)
    return correct / max(1, int(labels.numel())) * 100


class _Unit:
    """A stand-in normaliser: what :class:`TrainStream` yields stays in 0-255 float, unnormalised."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images.float()


class DistortedTrainStream(TrainStream):
    """The run's training stream (same seeded order, crops and flips) with every batch distorted before
    normalisation; batch ``b`` of epoch ``e`` draws its noise from (seed, distortion, epoch e, b) alone, so a
    resumed stage sees the batches an uninterrupted one would."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        distortion: Distortion,
        batch_size: int,
        seed: int,
        normalizer: Normalizer,
        device: torch.device,
        channels_last: bool = False,
    ) -> None:
        super().__init__(
            images,
            labels,
            batch_size=batch_size,
            seed=seed,
            normalizer=_Unit(),
            device=device,
            channels_last=channels_last,
        )
        self.distortion = distortion
        self.final_normalizer = normalizer

    def epoch(self, epoch: int, start_batch: int = 0, *, indexed: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
        batches = super().epoch(epoch, start_batch, indexed=indexed)
        for b, (raw, labels, *index) in enumerate(batches, start=start_batch):
            g = self.distortion.generator(self.seed, f"train-epoch{epoch}", b)
            x = self.final_normalizer(self.distortion.apply(raw / 255, g) * 255)
            yield (x.contiguous(memory_format=torch.channels_last) if self.channels_last else x), labels, *index
