"""Datasets as decoded uint8 tensors: loading, caching, subsets and validation splits.

Images are decoded once (PIL), stored as one ``uint8`` tensor per split (N, C, H, W) and cached on disk, so
later runs load them in a fraction of a second. Everything downstream (augmentation, batching) works on
these tensors.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from harness.core.errors import DataUnavailableError, UsageError
from harness.core.identity import tensor_fingerprint
from harness.core.io import atomic_torch_save

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True)
class DatasetRequest:
    """What a dataset loader is asked for."""

    name: str
    cache_dir: Path
    arg: str | None = None
    data_dir: Path | None = None
    download: bool = True


@dataclass
class ImageDataset:
    """A classification dataset held in memory as uint8 tensors."""

    name: str
    train_images: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # provenance, shown beside results (e.g. "JPEG copy of CIFAR-10")
    fingerprint: str = ""  # set by the harness (prepare) from the tensors; a loader's value is replaced
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None
    notes: dict = field(default_factory=dict)  # subset / split settings, recorded in results
    location: str = ""  # where the data was read from (an absolute path): recorded, never part of a name

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.train_images.shape[-1])

    def describe(self) -> dict:
        return {
            "name": self.name, "source": self.source, "fingerprint": self.fingerprint,
            "num_classes": self.num_classes, "input": [self.in_chans, self.input_size, self.input_size],
            "train": int(self.train_labels.numel()), "test": int(self.test_labels.numel()),
            "val": int(self.val_labels.numel()) if self.val_labels is not None else 0,
            "mean": list(self.mean), "std": list(self.std), **self.notes,
            **({"location": self.location} if self.location else {}),
        }


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units."""
    x = images.to(torch.float64).div_(255).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(round(v, 4) for v in x.mean(1).tolist()), tuple(round(v, 4) for v in x.std(1).tolist())


def cached(cache_file: Path, build: Callable[[], dict]) -> dict:
    """Load a dict of tensors from ``cache_file``, building and saving it atomically when missing."""
    if cache_file.exists():
        try:
            return torch.load(cache_file, weights_only=True)
        except Exception:
            cache_file.unlink(missing_ok=True)  # a corrupt cache is rebuilt, never trusted
    payload = build()
    atomic_torch_save(payload, cache_file)
    return payload


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip", ".tar")


def path_stem(path: str) -> str:
    """A path's last component without archive suffixes: ``/data/cifar10-jpg.tar.gz`` -> ``cifar10-jpg``."""
    name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def display_name(name: str) -> str:
    """A dataset's short, stable name for record files, tables and plots: ``imagefolder:PATH`` becomes
    ``imagefolder:<stem>`` (the record keeps the full path as ``location``, and the data's ``fingerprint``);
    any other ``prefix:ARG`` whose argument is an absolute path is shortened the same way. Short names
    (``cifar10``, ``imagefolder:cifar10-jpg``) come back unchanged."""
    prefix, sep, arg = name.partition(":")
    absolute = arg.startswith(("/", "\\", "~")) or (len(arg) > 2 and arg[1] == ":" and arg[2] in "/\\")
    if sep and (prefix == "imagefolder" or absolute):
        return f"{prefix}:{path_stem(arg) or arg}"
    return name


# ---- image trees: directories, zip and tar archives in the ImageFolder layout -------------------------

Member = tuple[str, str, Callable[[], bytes]]  # (split, class, read)


def _tree_members(source: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                yield path.relative_to(source).as_posix(), path.read_bytes
    elif zipfile.is_zipfile(source):
        zf = zipfile.ZipFile(source)
        for name in sorted(zf.namelist()):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield name, (lambda n=name: zf.read(n))
    elif tarfile.is_tarfile(source):
        # read members in stream order (a compressed tar cannot seek back cheaply), then sort by name
        found = []
        with tarfile.open(source, mode="r:*") as tf:
            for m in tf:
                if m.isfile() and Path(m.name).suffix.lower() in IMAGE_SUFFIXES:
                    found.append((m.name, tf.extractfile(m).read()))  # type: ignore[union-attr]
        for name, data in sorted(found):
            yield name, (lambda d=data: d)
    else:
        raise DataUnavailableError(f"'{source}' is neither a folder nor a zip/tar archive of images")


def read_imagefolder(source: Path) -> dict[str, list[Member]]:
    """Group the images of an ImageFolder tree by split: ``.../train/<class>/x.jpg`` and ``.../test/...``."""
    splits: dict[str, list[Member]] = {"train": [], "test": []}
    for rel, read in _tree_members(source):
        parts = rel.split("/")
        for i in range(len(parts) - 2):
            if parts[i] in splits:
                splits[parts[i]].append((parts[i], parts[i + 1], read))
                break
    if not splits["train"] or not splits["test"]:
        raise DataUnavailableError(
            f"'{source}' has no train/<class>/ and test/<class>/ image folders; an image-folder dataset "
            f"needs both (e.g. PATH/train/cat/0001.jpg and PATH/test/cat/0001.jpg)"
        )
    return splits


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def decode_members(members: list[Member], classes: list[str], *, grayscale: bool) -> tuple[torch.Tensor, torch.Tensor]:
    index = {c: i for i, c in enumerate(classes)}
    mode = "L" if grayscale else "RGB"

    def load(member: Member) -> np.ndarray:
        arr = np.asarray(_decode(member[2]()).convert(mode))
        return arr[:, :, None] if arr.ndim == 2 else arr

    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        arrays = list(pool.map(load, members, chunksize=256))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise UsageError(f"images have different sizes {sorted(shapes)[:3]}...; resize them to one size first")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([index[c] for _, c, _ in members], dtype=torch.int64)
    return images, labels


def source_state(source: Path) -> str:
    """A key for the decoded-data cache: the path with the size and modification time of the archive, or of
    every file in a folder (an edited image changes a file's time, not its folder's)."""
    h = hashlib.sha1(str(source).encode())
    for path in sorted(source.rglob("*")) if source.is_dir() else [source]:
        stat = path.stat()
        h.update(f"|{path.relative_to(source) if source.is_dir() else ''}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def load_imagefolder(source: Path, name: str, cache_dir: Path, source_note: str | None = None) -> ImageDataset:
    """Decode (once, then from the cache) an ImageFolder tree or archive into an ImageDataset."""
    source = source.expanduser().resolve()
    if not source.exists():
        raise DataUnavailableError(f"no dataset at '{source}': give an existing folder or archive")
    key = source_state(source)

    def build() -> dict:
        splits = read_imagefolder(source)
        classes = sorted({c for _, c, _ in splits["train"]})
        unknown = sorted({c for _, c, _ in splits["test"]} - set(classes))
        if unknown:
            raise UsageError(f"test classes {unknown} of '{source}' have no training images")
        first = _decode(splits["train"][0][2]())
        grayscale = first.mode in ("L", "1", "I;16", "I")
        train = decode_members(splits["train"], classes, grayscale=grayscale)
        test = decode_members(splits["test"], classes, grayscale=grayscale)
        return {"train": train, "test": test, "classes": classes}

    payload = cached(cache_dir / "datasets" / f"{name.replace(':', '_').replace('/', '_')[:40]}-{key}.pt", build)
    train_x, train_y = payload["train"]
    test_x, test_y = payload["test"]
    mean, std = channel_stats(train_x)
    return ImageDataset(
        name=name, train_images=train_x, train_labels=train_y, test_images=test_x, test_labels=test_y,
        classes=list(payload["classes"]), mean=mean, std=std, source=source_note or f"image folder {source.name}",
        location=str(source),
    )


# ---- subsets and validation splits ------------------------------------------------------------------


def stratified_indices(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` indices spread evenly over classes, drawn with a fixed seed, in ascending order."""
    num_classes = int(labels.max()) + 1
    g = torch.Generator().manual_seed(seed)
    per_class = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]
    per_class = [idx[torch.randperm(len(idx), generator=g)] for idx in per_class]
    base, extra = divmod(count, num_classes)
    chosen = [idx[: base + (1 if c < extra else 0)] for c, idx in enumerate(per_class)]
    return torch.sort(torch.cat(chosen)).values


def prepare(
    ds: ImageDataset,
    *,
    train_subset: int | None = None,
    test_subset: int | None = None,
    val_split: float = 0.0,
    split_seed: int = 0,
) -> ImageDataset:
    """Apply a stratified training/test subset, hold out a stratified validation split, and fingerprint the
    result: the harness computes every dataset's fingerprint from its decoded tensors, whatever the loader
    set, so a changed pixel or label always changes every stage key downstream."""
    tx, ty, ex, ey = ds.train_images, ds.train_labels, ds.test_images, ds.test_labels
    notes = dict(ds.notes)
    if train_subset:
        if train_subset > len(ty):
            raise UsageError(f"--train-subset {train_subset} exceeds the {len(ty)} training images")
        idx = stratified_indices(ty, train_subset, split_seed)
        tx, ty = tx[idx], ty[idx]
        notes["train_subset"] = train_subset
    if test_subset:
        if test_subset > len(ey):
            raise UsageError(f"--test-subset {test_subset} exceeds the {len(ey)} test images")
        idx = stratified_indices(ey, test_subset, split_seed)
        ex, ey = ex[idx], ey[idx]
        notes["test_subset"] = test_subset
    vx = vy = None
    if val_split:
        if not 0 < val_split < 1:
            raise UsageError(f"--val-split must be a fraction in (0, 1), got {val_split}")
        held = stratified_indices(ty, int(round(len(ty) * val_split)), split_seed + 1)
        keep = torch.ones(len(ty), dtype=torch.bool)
        keep[held] = False
        vx, vy, tx, ty = tx[held], ty[held], tx[keep], ty[keep]
        notes["val_split"] = val_split
    if notes != ds.notes:
        notes["split_seed"] = split_seed
    return replace(
        ds, train_images=tx, train_labels=ty, test_images=ex, test_labels=ey, val_images=vx, val_labels=vy,
        notes=notes, fingerprint=tensor_fingerprint(tx, ty, ex, ey, vx, vy),
    )
