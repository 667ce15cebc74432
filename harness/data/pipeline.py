"""The shared data pipeline: seeded batches with per-image crop and flip, on tensors, on the training device.

For a given data seed, every method in a run gets exactly the same sequence of batches: the permutation,
the crop offsets and the flips of epoch ``e`` are drawn from a generator seeded by ``(seed, e)`` alone, on
the CPU, so they do not depend on the device, on the method, nor on what ran before (which is also what
makes a resumed run see the batches an uninterrupted one would).

Augmentation is the CIFAR standard (random crop with zero padding, horizontal flip), done per image with
one gather over the whole batch: no per-sample PIL work and no DataLoader workers. The training set is
padded once and kept on the device as uint8. A recipe may ask for airbench's variants instead: reflection
padding, and the alternating flip (each image's flip drawn once, from the seed alone; on odd epochs every
image is flipped the other way, so that each image is seen both ways in every two epochs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

if TYPE_CHECKING:
    from harness.data.datasets import ImageDataset


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """The generator for one epoch of one stream; independent of anything else in the process."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7919 + stream * 104_729) % (2**63))


@dataclass(frozen=True)
class EpochPlan:
    """The random draws of one epoch: the order of the images and each image's crop offset and flip."""

    order: torch.Tensor  # (N,) int64
    dy: torch.Tensor  # (N,) offsets in [0, 2 * pad]
    dx: torch.Tensor
    flip: torch.Tensor  # (N,) bool


class Normalizer:
    """uint8 images -> normalised float images, on the device."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> None:
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.inv_std = 1.0 / (torch.tensor(std, device=device).view(1, -1, 1, 1) * 255)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) * self.inv_std


class TrainStream:
    """Augmented training batches, identical for every consumer with the same seed."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        seed: int,
        normalizer: Callable[[torch.Tensor], torch.Tensor],
        device: torch.device,
        pad: int = 4,
        flip: bool | str = True,
        channels_last: bool = False,
        pad_mode: str = "zeros",
    ) -> None:
        """``flip``: True or ``random`` (per image and epoch), ``alternating`` (see the module), False or
        ``none``; ``pad_mode``: ``zeros`` or ``reflect``."""
        self.n = int(labels.numel())
        self.batch_size = batch_size
        self.seed = seed
        self.pad = pad
        self.flip = flip
        self.size = (images.shape[-2], images.shape[-1])
        self.device = device
        self.normalizer = normalizer
        self.channels_last = channels_last
        self.flip_mode = ("random" if flip else "none") if isinstance(flip, bool) else flip
        if self.flip_mode not in ("random", "alternating", "none"):
            raise ValueError(f"flip must be random, alternating or none, got {flip!r}")
        if pad_mode == "zeros":  # as RandomCrop(padding=4)
            self.padded = F.pad(images, (pad, pad, pad, pad)).to(device)
        else:
            self.padded = F.pad(images, (pad, pad, pad, pad), mode=pad_mode).to(device)
        self.labels = labels.to(device)
        h, w = self.size
        self._rows = torch.arange(h, device=device)
        self._cols = torch.arange(w, device=device)
        self._chans = torch.arange(images.shape[1], device=device)

    def __len__(self) -> int:
        """Batches per epoch. A trailing batch of one image is dropped (BatchNorm cannot train on it)."""
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest > 1 else 0)

    def plan(self, epoch: int) -> EpochPlan:
        g = epoch_generator(self.seed, epoch)
        order = torch.randperm(self.n, generator=g)
        offsets = torch.randint(0, 2 * self.pad + 1, (2, self.n), generator=g)
        if self.flip_mode == "alternating":
            flips = (torch.rand(self.n, generator=epoch_generator(self.seed, 0, stream=1)) < 0.5) ^ bool(epoch % 2)
        elif self.flip_mode == "random":
            flips = torch.rand(self.n, generator=g) < 0.5
        else:
            flips = torch.zeros(self.n, dtype=torch.bool)
        return EpochPlan(order=order, dy=offsets[0], dx=offsets[1], flip=flips)

    def epoch(self, epoch: int, start_batch: int = 0, *, indexed: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield (normalised images, labels) for every batch of ``epoch`` from ``start_batch`` on.

        ``indexed=True`` yields (images, labels, indices) instead: ``indices`` (int64, on the device) are the
        batch's positions in the training set (``0 .. n-1``, the order of the dataset's training tensors), what
        a method keyed by sample needs (CRD's memory bank). The batches themselves are the same either way:
        the indices are the epoch's permutation, drawn anyway. The engine asks for them only for an objective
        that declares ``takes_indices`` (:class:`harness.train.objective.Objective`)."""
        plan = self.plan(epoch)
        order, dy, dx, flip = (t.to(self.device, non_blocking=True) for t in (plan.order, plan.dy, plan.dx, plan.flip))
        for b in range(start_batch, len(self)):
            sl = slice(b * self.batch_size, min(self.n, (b + 1) * self.batch_size))
            idx = order[sl]
            batch = self.augment(idx, dy[sl], dx[sl], flip[sl]), self.labels[idx]
            yield (*batch, idx) if indexed else batch

    def augment(self, idx: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Crop (offsets ``dy``, ``dx`` in the padded image) and flip each image, then normalise."""
        h, w = self.size
        rows = (dy[:, None] + self._rows[None, :])[:, None, :, None]
        cols = torch.where(
            flip[:, None], dx[:, None] + (w - 1 - self._cols)[None, :], dx[:, None] + self._cols[None, :]
        )
        batch = self.padded[idx[:, None, None, None], self._chans[None, :, None, None], rows, cols[:, None, None, :]]
        x = self.normalizer(batch)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


class EvalStream:
    """Un-augmented batches in a fixed order (validation and test sets)."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        normalizer: Normalizer,
        device: torch.device,
        channels_last: bool = False,
    ) -> None:
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.normalizer = normalizer
        self.channels_last = channels_last

    def __len__(self) -> int:
        return -(-int(self.labels.numel()) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, int(self.labels.numel()), self.batch_size):
            x = self.normalizer(self.images[start : start + self.batch_size])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[start : start + self.batch_size]


class DataStreams:
    """The streams of one dataset for one run: a training stream per batch size and the evaluation streams of
    the test set and of the validation split (if any), each made once and kept on the device."""

    def __init__(
        self,
        dataset: "ImageDataset",
        *,
        seed: int,
        device: torch.device,
        channels_last: bool,
        eval_batch_size: int = 512,
    ) -> None:
        self.dataset = dataset
        self.seed = seed
        self.device = device
        self.channels_last = channels_last
        self.eval_batch_size = eval_batch_size
        self.normalizer = Normalizer(dataset.mean, dataset.std, device)
        self._train: dict[tuple, TrainStream] = {}
        self._eval: dict[str, EvalStream | None] = {}

    def train(self, batch_size: int, *, pad: int = 4, flip: str = "random", pad_mode: str = "zeros") -> TrainStream:
        """The training stream of ``batch_size`` with the recipe's augmentation (default: the CIFAR standard)."""
        key = (batch_size, pad, flip, pad_mode)
        if key not in self._train:
            ds = self.dataset
            self._train[key] = TrainStream(
                ds.train_images,
                ds.train_labels,
                batch_size=batch_size,
                seed=self.seed,
                normalizer=self.normalizer,
                device=self.device,
                pad=pad,
                flip=True if flip == "random" else flip,
                channels_last=self.channels_last,
                pad_mode=pad_mode,
            )
        return self._train[key]

    def eval(self, split: str) -> EvalStream | None:
        """The ``test`` or ``val`` stream (None when the run has no validation split)."""
        if split not in self._eval:
            ds = self.dataset
            images, labels = (ds.test_images, ds.test_labels) if split == "test" else (ds.val_images, ds.val_labels)
            self._eval[split] = (
                None
                if images is None or labels is None
                else EvalStream(
                    images,
                    labels,
                    batch_size=self.eval_batch_size,
                    normalizer=self.normalizer,
                    device=self.device,
                    channels_last=self.channels_last,
                )
            )
        return self._eval[split]
