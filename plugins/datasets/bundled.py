"""``cifar10-mini``: a small real dataset shipped with the project, so that the quickstart works offline.

5,000 training images (500 per class) and 1,000 test images (100 per class) of CIFAR-10, taken from the
JPEG copy of CIFAR-10 (the first images of each class in the original order; see
``scripts/make_bundled_dataset.py``). Its pixels are JPEG-compressed: accuracies on it are for smoke tests
and demonstrations, not comparable with published CIFAR-10 numbers.
"""

from __future__ import annotations

from pathlib import Path

from harness.api import DatasetRequest, ImageDataset, load_imagefolder

ARCHIVE = Path(__file__).parent / "data" / "cifar10-mini.zip"


def load(request: DatasetRequest) -> ImageDataset:
    return load_imagefolder(
        ARCHIVE,
        "cifar10-mini",
        request.cache_dir,
        source_note="bundled CIFAR-10 subset (JPEG copy; 5,000 train / 1,000 test)",
        notice=request.notice,
    )
