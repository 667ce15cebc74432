"""``imagefolder:<path>``: any tree (folder, .zip or .tar[.gz]) with ``train/<class>/`` and ``test/<class>/``.

Channel count and input size come from the images (grayscale trees give 1-channel datasets; a tree of mixed
grayscale and RGB images gets the majority's count, with a note naming the images converted); all images
must share one size. A JPEG copy of CIFAR-10 (``cifar10-jpg.tar.gz``) is one such tree: its results are
labelled with their source, since its pixels are lossy.

The dataset's name is short and stable, ``imagefolder:<stem>`` (``imagefolder:cifar10-jpg`` for
``/data/cifar10-jpg.tar.gz``): it goes into record file names and table titles, so it never holds
a path. The record keeps the path as ``dataset.location`` and identifies the data by its ``fingerprint``.
"""

from __future__ import annotations

from pathlib import Path

from harness.api import DatasetRequest, ImageDataset, load_imagefolder, path_stem


def load(request: DatasetRequest) -> ImageDataset:
    path = Path(request.arg or "")
    note = None
    if "cifar10-jpg" in path.name or "cifar-10-images-jpg" in str(path):
        note = "JPEG copy of CIFAR-10 (lossy pixels; not identical with published CIFAR-10 numbers)"
    name = f"imagefolder:{path_stem(str(path.expanduser().resolve()))}"
    return load_imagefolder(path, name, request.cache_dir, source_note=note, notice=request.notice)
