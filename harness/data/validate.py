"""What a dataset loader returns, checked before anything uses it: :func:`check_loaded`.

Every dataset plugin's loader must return an :class:`~harness.data.datasets.ImageDataset` of ``uint8`` pixels
``0..255`` in ``(N, C, H, W)`` and ``int64`` labels in ``0..classes-1``; a loader that gets one of these
wrong (float images in [0, 1], NHWC, int32 or out-of-range labels, a mean/std per channel that does not
match the channels) would otherwise train at chance with exit 0 or fail mid-training with a torch error.
Here it is one line naming the plugin, the dataset and what to return instead (a
:class:`~harness.core.errors.PluginError`, exit 2), before anything is trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from harness.core.errors import PluginError
from harness.data.datasets import ImageDataset

SPLITS = ("train", "test", "val")


def _images_problem(name: str, images: Any) -> str | None:
    if not isinstance(images, torch.Tensor):
        return f"{name}_images is a {type(images).__name__}, not a torch tensor"
    if images.dtype.is_floating_point:
        lo, hi = (float(images.min()), float(images.max())) if images.numel() else (0.0, 0.0)
        return (
            f"{name}_images are {images.dtype} in [{lo:.3g}, {hi:.3g}]; bench expects uint8 pixels 0-255: "
            f"return (images * 255).round().to(torch.uint8) for images in [0, 1]"
        )
    if images.dtype != torch.uint8:
        return f"{name}_images are {images.dtype}; bench expects uint8 pixels 0-255"
    if images.dim() != 4:
        return f"{name}_images have shape {tuple(images.shape)}; bench expects 4 dimensions (N, C, H, W)"
    if images.shape[0] == 0:
        return f"{name}_images hold no image"
    if images.shape[1] not in (1, 3, 4) and images.shape[3] in (1, 3, 4):
        return (
            f"{name}_images have shape {tuple(images.shape)}, which looks like (N, H, W, C); bench expects "
            f"(N, C, H, W): return images.permute(0, 3, 1, 2).contiguous()"
        )
    return None


def _labels_problem(name: str, labels: Any, count: int, classes: int) -> str | None:
    if not isinstance(labels, torch.Tensor):
        return f"{name}_labels is a {type(labels).__name__}, not a torch tensor"
    if labels.dtype != torch.int64:
        return f"{name}_labels are {labels.dtype}; bench expects int64 class indices: return labels.long()"
    if labels.dim() != 1 or labels.numel() != count:
        return f"{name}_labels have shape {tuple(labels.shape)}; bench expects ({count},), one per image"
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= classes:
        return f"{name}_labels lie in [{lo}, {hi}]; with {classes} classes they must lie in [0, {classes - 1}]"
    return None


def _problem(ds: Any) -> str | None:
    if not isinstance(ds, ImageDataset):
        return f"returned a {type(ds).__name__}, not a harness.api.ImageDataset"
    classes = ds.classes
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) and c for c in classes):
        return "classes must be a list of non-empty names (str)"
    if len(set(classes)) != len(classes):
        return f"classes name a class twice ({sorted(c for c in set(classes) if list(classes).count(c) > 1)[0]!r})"
    if len(classes) < 2:
        return f"classes holds {len(classes)} class(es); a classifier needs at least 2"
    if (ds.val_images is None) != (ds.val_labels is None):
        return "val_images and val_labels must be given together"
    shape = None
    for split in SPLITS:
        images, labels = getattr(ds, f"{split}_images"), getattr(ds, f"{split}_labels")
        if split == "val" and images is None:
            continue
        problem = _images_problem(split, images) or _labels_problem(split, labels, len(images), len(classes))
        if problem:
            return problem
        if shape is None:
            shape = tuple(images.shape[1:])
        elif tuple(images.shape[1:]) != shape:
            return f"{split}_images are {tuple(images.shape[1:])} per image, train_images {shape}; they must agree"
    if int(ds.train_images.max()) <= 1:
        return (
            "train_images hold only the values 0 and 1: images in [0, 1] cast to uint8? bench expects pixels "
            "0-255: return (images * 255).round().to(torch.uint8)"
        )
    channels = ds.train_images.shape[1]
    for field, values in (("mean", ds.mean), ("std", ds.std)):
        if not isinstance(values, (list, tuple)) or len(values) != channels:
            return (
                f"{field} has {len(values) if isinstance(values, (list, tuple)) else 'no'} value(s) for "
                f"{channels} channel(s); give one per channel, in [0, 1] pixel units"
            )
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return f"{field} {list(values)} is not finite numbers"
    if not all(0 <= v <= 1 for v in ds.mean) or not all(0 < v <= 1 for v in ds.std):
        return (
            f"mean {list(ds.mean)} / std {list(ds.std)} are not in [0, 1] pixel units (std > 0): divide "
            f"0-255 statistics by 255"
        )
    return None


def check_loaded(ds: Any, plugin: str, dataset: str) -> ImageDataset:
    """``ds`` when it is a sound ImageDataset, else a PluginError naming ``plugin``, ``dataset`` and the fix."""
    problem = _problem(ds)
    if problem:
        raise PluginError(f"dataset plugin '{plugin}' (loader of '{dataset}'): {problem}")
    return ds


def check_declared(ds: ImageDataset, declared: Mapping[str, Any], plugin: str, dataset: str) -> None:
    """A PluginError when the loaded ``ds`` is not what its plugin declared at registration (``classes``,
    ``in_chans``, ``input_size``, ``train_images``, ``test_images``): dry runs and ``bench cost`` build models
    and count the work from the declaration, so a wrong one would give them another network than a run trains."""
    loaded = {
        "classes": ds.num_classes,
        "in_chans": ds.in_chans,
        "input_size": ds.input_size,
        "train_images": len(ds.train_labels),
        "test_images": len(ds.test_labels),
    }
    wrong = [
        f"{key}={declared[key]} (loaded: {value})"
        for key, value in loaded.items()
        if declared.get(key) is not None and declared[key] != value
    ]
    if wrong:
        raise PluginError(
            f"dataset plugin '{plugin}' declared dataset '{dataset}' with {', '.join(wrong)} at "
            f"registration; dry runs and bench cost use the declaration: make it what the loader "
            f"returns"
        )
