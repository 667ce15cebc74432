"""CIFAR-10 and CIFAR-100 through torchvision.

Looked for, in order, in ``--data-dir`` and in the cache directory; downloaded into the cache directory
when missing and the network allows. When neither works the error says what to do; there is never a silent
substitute. Normalisation uses the usual per-channel statistics of each training set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from harness.api import DataUnavailableError, DatasetRequest, ImageDataset, cached

STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _torchvision_split(name: str, root: Path, train: bool, download: bool):
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    return cls(str(root), train=train, download=download)


def _find(name: str, request: DatasetRequest) -> tuple[Any, Any]:
    roots = [r for r in (request.data_dir, request.cache_dir / "torchvision") if r is not None]
    corrupt = []
    for root in roots:
        if (Path(root) / FOLDERS[name]).exists():
            try:
                return _torchvision_split(name, root, True, False), _torchvision_split(name, root, False, False)
            except RuntimeError:
                corrupt.append(str(Path(root) / FOLDERS[name]))
                continue  # a corrupt copy: try the next place, then a download
    target = request.cache_dir / "torchvision"
    if not request.download:
        places = " or ".join(f"'{Path(r) / FOLDERS[name]}'" for r in roots)
        bad = f" (incomplete or corrupt: {', '.join(corrupt)})" if corrupt else ""
        raise DataUnavailableError(
            f"{name}: not found in {places}{bad}; --no-download was given: pass --data-dir DIR (the folder that holds "
            f"'{FOLDERS[name]}'), drop --no-download, or use --dataset cifar10-mini (bundled) or imagefolder:PATH"
        )
    try:
        return _torchvision_split(name, target, True, True), _torchvision_split(name, target, False, True)
    except Exception as exc:
        where = f" or in --data-dir {request.data_dir}" if request.data_dir else ""
        raise DataUnavailableError(
            f"{name}: not found in {target}{where} and the download failed ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else 'no detail'}). Download it where you have network "
            f"access and pass --data-dir DIR (the folder that holds '{FOLDERS[name]}'); offline, use --dataset "
            f"cifar10-mini (bundled, 5,000/1,000 CIFAR-10 images) or --dataset imagefolder:PATH (a train/ + test/ "
            f"image-folder copy)"
        ) from None


def load_cifar(request: DatasetRequest, name: str) -> ImageDataset:
    def build() -> dict:
        train, test = _find(name, request)

        def tensors(split) -> tuple[torch.Tensor, torch.Tensor]:
            images = torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous()
            return images, torch.tensor(split.targets, dtype=torch.int64)

        return {"train": tensors(train), "test": tensors(test), "classes": list(train.classes)}

    places = [Path(r) / FOLDERS[name] for r in (request.data_dir, request.cache_dir / "torchvision") if r is not None]
    payload = cached(request.cache_dir / "datasets" / f"{name}-torchvision.pt", build, source=places)
    (tx, ty), (ex, ey) = payload["train"], payload["test"]
    mean, std = STATS[name]
    return ImageDataset(
        name=name,
        train_images=tx,
        train_labels=ty,
        test_images=ex,
        test_labels=ey,
        classes=list(payload["classes"]),
        mean=mean,
        std=std,
        source=f"{name.upper()} (torchvision, original images)",
    )
