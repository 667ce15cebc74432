"""Datasets as decoded uint8 tensors: loading, caching, subsets and validation splits.

Images are decoded once (PIL), stored as one ``uint8`` tensor per split (N, C, H, W) and cached on disk, so
later runs load them in a fraction of a second. Everything downstream (augmentation, batching) works on
these tensors.
"""

from __future__ import annotations

import io
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from harness.core import progress
from harness.core.errors import DataUnavailableError, UsageError
from harness.core.identity import data_cache_key, tensor_fingerprint
from harness.core.io import atomic_torch_save
from harness.data import trees
from harness.data.reads import undeclared, watching
from harness.data.trees import ARCHIVE_SUFFIXES, Listing, Member, read_imagefolder  # noqa: F401


def stderr_notice(message: str) -> None:
    """The default ``notice``: one line on stderr, e.g. ``bench: warning: ...`` or ``bench: note: ...``."""
    print(f"bench: {message}", file=sys.stderr)


@dataclass(frozen=True)
class DatasetRequest:
    """What a dataset loader is asked for."""

    name: str
    cache_dir: Path
    arg: str | None = None
    data_dir: Path | None = None
    download: bool = True
    notice: Callable[[str], None] = field(default=stderr_notice, compare=False)  # "warning: ..." / "note: ..."


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
            "name": self.name,
            "source": self.source,
            "fingerprint": self.fingerprint,
            "num_classes": self.num_classes,
            "input": [self.in_chans, self.input_size, self.input_size],
            "train": int(self.train_labels.numel()),
            "test": int(self.test_labels.numel()),
            "val": int(self.val_labels.numel()) if self.val_labels is not None else 0,
            "mean": list(self.mean),
            "std": list(self.std),
            **self.notes,
            **({"location": self.location} if self.location else {}),
        }


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units. A constant channel (std 0, e.g. an empty
    colour channel) gets std 1/255 so that normalising it gives zeros, not a division by zero."""
    x = images.to(torch.float64).div_(255).transpose(0, 1).reshape(images.shape[1], -1)
    return (tuple(round(v, 4) for v in x.mean(1).tolist()), tuple(round(max(v, 1 / 255), 4) for v in x.std(1).tolist()))


#: what ``cached(source=...)`` takes: a file or folder, several, or None (``build`` reads no file)
Sources = Path | str | Sequence[Path | str] | None
_UNDECLARED: Any = object()


def cached(cache_file: Path, build: Callable[[], dict], *, source: Sources = _UNDECLARED) -> dict:
    """Load a dict of tensors from the cache, building and saving it atomically when missing.

    ``source`` is what ``build`` reads: a file, a folder or an archive, a list of them, or None when it reads
    no file (generated data). The harness names the cache file after it (``cache_file``'s name, then a key of
    the reader's code: the module defining ``build`` and this one, and of the source: its path and, for a
    folder, every file's path, size and modification time; :func:`harness.core.identity.data_cache_key`), so a
    changed reader, another folder (even one of the same name) and an edited file are decoded again, never
    served another source's tensors. While ``build`` runs, a file it opens outside ``source`` (and outside
    Python's own files) is an error naming it: declare it."""
    if source is _UNDECLARED:
        raise TypeError(
            "cached() needs source=: the file(s) or folder(s) build() reads (source=None when it reads "
            "none), so that the decoded data of one source is never served for another"
        )
    sources = [] if source is None else [source] if isinstance(source, (str, os.PathLike)) else list(source)
    readers = (sys.modules[__name__], trees)

    def named(key: str) -> Path:
        return cache_file.with_name(f"{cache_file.stem}-{key}{cache_file.suffix}")

    found = named(data_cache_key(build, readers, sources))
    if found.exists():
        try:
            with progress.loading(found, "loading decoded dataset"):
                return torch.load(found, weights_only=True)
        except Exception:  # a corrupt cache is rebuilt, never trusted (the write below replaces it)
            pass
    with watching() as reads:
        payload = build()
    stray = undeclared(reads, [Path(s) for s in sources])
    if stray:
        declared = ", ".join(f"'{s}'" for s in sources) or "none (source=None)"
        more = f" and {len(stray) - 1} more file(s)" if len(stray) > 1 else ""
        raise ValueError(
            f"cached(): build() read '{stray[0]}'{more}, which its source= does not name (declared: "
            f"{declared}); pass every file or folder it reads as source=, so that the cache is keyed "
            f"by it"
        )
    # keyed by the source as it is now: a build that fetched its data (a download) is found under the state it left
    atomic_torch_save(payload, named(data_cache_key(build, readers, sources)))
    return payload


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


# ---- image trees (listed by harness.data.trees), decoded ---------------------------------------------


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _decode_member(member: Member, source: Path | None = None) -> Image.Image:
    """Decode one image; an unreadable one is a DataUnavailableError naming its path inside the tree."""
    try:
        return _decode(member.read())
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError (truncated), SyntaxError, ...
        where = f" in '{source}'" if source else ""
        reason = str(exc).splitlines()[0][:120] if str(exc) else "no detail"
        raise DataUnavailableError(
            f"cannot read image '{member.path}'{where} ({type(exc).__name__}: {reason}); remove or replace it"
        ) from None


#: PIL modes whose images are grayscale (one channel); every other mode is decoded as RGB
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def decode_members(
    members: list[Member], source: Path | None = None, description: str = "decoding images"
) -> list[np.ndarray]:
    """Decode ``members`` into HxWx1 (grayscale images) or HxWx3 (every other) uint8 arrays, with progress;
    an unreadable image is a one-line error that names it."""

    def load(member: Member) -> np.ndarray:
        img = _decode_member(member, source)
        arr = np.asarray(img.convert("L" if img.mode in GRAY_MODES else "RGB"))
        return arr[:, :, None] if arr.ndim == 2 else arr

    arrays = []
    with (
        ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool,
        progress.task(description, len(members)) as advance,
    ):
        for arr in pool.map(load, members):
            arrays.append(arr)
            advance(1)
    return arrays


def common_channels(arrays: list[np.ndarray], members: list[Member]) -> tuple[int, list[str]]:
    """The channel count of the majority of the images (RGB on a tie: no colour is thrown away) and the paths
    of the others, which are converted to it (grayscale replicated to RGB, RGB to grayscale by PIL's
    ITU-R 601-2 luma)."""
    gray = [m.path for a, m in zip(arrays, members) if a.shape[2] == 1]
    if len(gray) * 2 > len(arrays):
        return 1, [m.path for a, m in zip(arrays, members) if a.shape[2] == 3]
    return 3, gray


def to_channels(arrays: list[np.ndarray], channels: int) -> list[np.ndarray]:
    """Each array with ``channels`` channels."""

    def convert(arr: np.ndarray) -> np.ndarray:
        if arr.shape[2] == channels:
            return arr
        if channels == 3:
            return np.repeat(arr, 3, axis=2)
        return np.asarray(Image.fromarray(arr).convert("L"))[:, :, None]

    return [convert(a) for a in arrays]


def stack_images(
    arrays: list[np.ndarray], members: list[Member], classes: list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W) uint8 images and int64 labels; images of another size are a one-line error naming one."""
    shapes = Counter(a.shape for a in arrays)
    if len(shapes) != 1:
        usual = shapes.most_common(1)[0][0]
        odd = next(i for i, a in enumerate(arrays) if a.shape != usual)
        size = lambda shape: f"{shape[1]}x{shape[0]}"  # noqa: E731
        raise UsageError(
            f"images have different sizes: '{members[odd].path}' is {size(arrays[odd].shape)}, "
            f"{shapes[usual]} of {len(arrays)} are {size(usual)}; resize them to one size first"
        )
    index = {c: i for i, c in enumerate(classes)}
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([index[m.cls] for m in members], dtype=torch.int64)
    return images, labels


def _listed(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def load_imagefolder(
    source: Path,
    name: str,
    cache_dir: Path,
    source_note: str | None = None,
    notice: Callable[[str], None] = stderr_notice,
) -> ImageDataset:
    """Decode (once, then from the cache) an ImageFolder tree or archive into an ImageDataset.

    ``notice`` receives one line for files that were skipped (not images, or outside the layout), a warning
    for entries that cannot be read (dangling links, link loops), a note naming the images converted to the
    channel count of the majority (grayscale among RGB images or the other way round; RGB on a tie) and a
    warning for classes of train/ that test/ lacks (also kept in ``notes["missing_test_classes"]``); all are
    repeated on every load, also from the cache."""
    source = source.expanduser().resolve()
    if not source.exists():
        raise DataUnavailableError(f"no dataset at '{source}': give an existing folder or archive")

    def build() -> dict:
        listing = Listing()
        splits = read_imagefolder(source, listing)
        classes = sorted({m.cls for m in splits["train"]})
        unknown = sorted({m.cls for m in splits["test"]} - set(classes))
        if unknown:
            raise UsageError(f"test classes {unknown} of '{source}' have no training images")
        train = decode_members(splits["train"], source, f"decoding {name} train/ (first use; cached afterwards)")
        test = decode_members(splits["test"], source, f"decoding {name} test/")
        channels, converted = common_channels(train + test, splits["train"] + splits["test"])  # one for both
        (tx, ty), (ex, ey) = (
            stack_images(to_channels(arrays, channels), splits[split], classes)
            for split, arrays in (("train", train), ("test", test))
        )
        if tx.shape[1:] != ex.shape[1:]:
            raise UsageError(
                f"train/ images of '{source}' are {tx.shape[-1]}x{tx.shape[-2]}, test/ images "
                f"{ex.shape[-1]}x{ex.shape[-2]}; resize them to one size first"
            )
        return {
            "train": (tx, ty),
            "test": (ex, ey),
            "classes": classes,
            "skipped": listing.skipped,
            "broken": listing.broken,
            "converted": converted,
            "channels": channels,
        }

    cache_file = cache_dir / "datasets" / f"{name.replace(':', '_').replace('/', '_')[:40]}.pt"
    payload = cached(cache_file, build, source=source)
    train_x, train_y = payload["train"]
    test_x, test_y = payload["test"]
    classes = list(payload["classes"])
    skipped, broken, converted = payload.get("skipped", []), payload.get("broken", []), payload.get("converted", [])
    if broken:
        notice(
            f"warning: {name}: skipped {len(broken)} entr{'y' if len(broken) == 1 else 'ies'} of '{source}' "
            f"that cannot be read: {_listed(broken)}; fix or remove them"
        )
    if skipped:
        notice(
            f"note: {name}: skipped {len(skipped)} file(s) in '{source}' that are not images in the "
            f"train/<class>/ or test/<class>/ layout: {_listed(skipped)}"
        )
    if converted:
        kind, other = ("RGB", "grayscale") if payload.get("channels", 3) == 3 else ("grayscale", "RGB")
        notice(
            f"note: {name}: {len(converted)} of {len(train_y) + len(test_y)} images are {other}, the others "
            f"{kind}: converted to {kind} ({_listed(converted)})"
        )
    notes = {}
    missing = [classes[c] for c in sorted(set(range(len(classes))) - set(test_y.unique().tolist()))]
    if missing:
        notice(
            f"warning: {name}: test/ has no images of {len(missing)} of the {len(classes)} classes in train/ "
            f"({_listed(missing, 5)}); test accuracy covers the other {len(classes) - len(missing)} only"
        )
        notes["missing_test_classes"] = missing
    mean, std = channel_stats(train_x)
    return ImageDataset(
        name=name,
        train_images=train_x,
        train_labels=train_y,
        test_images=test_x,
        test_labels=test_y,
        classes=classes,
        mean=mean,
        std=std,
        source=source_note or f"image folder {source.name}",
        location=str(source),
        notes=notes,
    )


# ---- subsets and validation splits ------------------------------------------------------------------


def stratified_indices(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` indices spread evenly over classes, drawn with a fixed seed, in ascending order."""
    num_classes = int(labels.max()) + 1
    g = torch.Generator().manual_seed(seed)
    per_class = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]
    per_class = [idx[torch.randperm(len(idx), generator=g)] for idx in per_class]
    per_class = [idx for idx in per_class if len(idx)]  # a class absent from this split gets no share
    base, extra = divmod(count, len(per_class))
    chosen = [idx[: base + (1 if c < extra else 0)] for c, idx in enumerate(per_class)]
    return torch.sort(torch.cat(chosen)).values


def _subset(
    images: torch.Tensor, labels: torch.Tensor, count: int, seed: int, split: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """A class-balanced subset of ``count`` images of one split (``--train-subset`` / ``--test-subset``)."""
    if count > len(labels):
        noun = "training" if split == "train" else "test"
        raise UsageError(f"--{split}-subset {count} exceeds the {len(labels)} {noun} images")
    idx = stratified_indices(labels, count, seed)
    return images[idx], labels[idx]


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
        tx, ty = _subset(tx, ty, train_subset, split_seed, "train")
        notes["train_subset"] = train_subset
    if test_subset:
        ex, ey = _subset(ex, ey, test_subset, split_seed, "test")
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
        ds,
        train_images=tx,
        train_labels=ty,
        test_images=ex,
        test_labels=ey,
        val_images=vx,
        val_labels=vy,
        notes=notes,
        fingerprint=tensor_fingerprint(tx, ty, ex, ey, vx, vy),
    )
