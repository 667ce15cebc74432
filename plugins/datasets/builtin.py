"""The built-in dataset plugins, declared by reference (``harness.api.declared_plugin``): a loader's module
is imported when its dataset is used."""

from __future__ import annotations

from harness.api import declared_plugin, lazy


def _shape(classes: int, train: int, test: int, *, downloads: bool = False) -> dict[str, int | bool]:
    """What a dataset is before it is loaded: dry runs and bench cost read it (``downloads``: a real run
    fetches it when it is not on disk)."""
    return {
        "classes": classes,
        "in_chans": 3,
        "input_size": 32,
        "train_images": train,
        "test_images": test,
        "downloads": downloads,
    }


cifar = declared_plugin(
    "datasets",
    [
        (
            "cifar10",
            lazy("plugins.datasets.cifar:load_cifar", name="cifar10"),
            "CIFAR-10 via torchvision (download or --data-dir)",
            _shape(10, 50_000, 10_000, downloads=True),
        ),
        (
            "cifar100",
            lazy("plugins.datasets.cifar:load_cifar", name="cifar100"),
            "CIFAR-100 via torchvision (download or --data-dir)",
            _shape(100, 50_000, 10_000, downloads=True),
        ),
    ],
)
imagefolder = declared_plugin(
    "datasets",
    [
        (
            "imagefolder:",
            "plugins.datasets.imagefolder:load",
            "train/ + test/ class folders (a folder, .zip or .tar.gz)",
        ),
    ],
)
bundled = declared_plugin(
    "datasets",
    [
        (
            "cifar10-mini",
            "plugins.datasets.bundled:load",
            "bundled 5k/1k CIFAR-10 subset (JPEG), works offline",
            _shape(10, 5_000, 1_000),
        ),
    ],
)
