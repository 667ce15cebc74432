"""Datasets: image folders of any channel count and size, subsets, validation splits, records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from conftest import run_tiny
from harness.data.datasets import prepare, stratified_indices
from harness.plugins.manager import load_plugins


def make_tree(root: Path, classes: int = 3, per_split: dict | None = None, size: int = 28) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (per_split or {"train": 40, "test": 12}).items():
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n // classes):
                pixels = (rng.random((size, size)) * 80 + c * 80).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(d / f"{i}.png")
    return root


def test_grayscale_28px_imagefolder_trains_end_to_end(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    outcome = run_tiny(
        tmp_path / "cache",
        tmp_path / "out",
        dataset=f"imagefolder:{tree}",
        train_subset=None,
        test_subset=None,
        overrides={"epochs": 2, "batch_size": 8},
    )
    (record,) = outcome.records
    assert record["dataset"]["input"] == [1, 28, 28] and record["dataset"]["num_classes"] == 3
    assert record["metrics"]["params_deployed"] < 78_042  # 1 input channel, 3 classes
    assert len(record["curves"]) == 2


def test_imagefolder_archive_and_decode_cache(tmp_path: Path) -> None:
    import shutil

    tree = make_tree(tmp_path / "tree")
    archive = Path(shutil.make_archive(str(tmp_path / "tree-archive"), "zip", tree))
    loader = load_plugins(entry_points=False, warn=False).datasets.resolve(f"imagefolder:{archive}")
    from harness.data.datasets import DatasetRequest

    req = DatasetRequest(name="x", arg=str(archive), cache_dir=tmp_path / "cache")
    ds = loader.obj(req)
    assert ds.train_images.shape == (39, 1, 28, 28) and ds.train_images.dtype == torch.uint8
    assert list((tmp_path / "cache" / "datasets").glob("*.pt"))
    again = loader.obj(req)  # from the cache
    assert torch.equal(again.train_images, ds.train_images) and again.fingerprint == ds.fingerprint


def test_subsets_are_stratified_and_val_split_is_disjoint(cache_dir: Path) -> None:
    from harness.data.datasets import DatasetRequest

    plugins = load_plugins(entry_points=False, warn=False)
    ds = plugins.datasets.resolve("cifar10-mini").obj(DatasetRequest(name="cifar10-mini", cache_dir=cache_dir))
    assert ds.train_images.shape == (5000, 3, 32, 32) and ds.test_images.shape == (1000, 3, 32, 32)
    small = prepare(ds, train_subset=1000, test_subset=200, val_split=0.1)
    assert torch.bincount(small.train_labels).tolist() == [90] * 10
    assert torch.bincount(small.val_labels).tolist() == [10] * 10
    assert torch.bincount(small.test_labels).tolist() == [20] * 10
    flat = lambda t: {row.numpy().tobytes() for row in t.reshape(len(t), -1)}
    assert not flat(small.val_images) & flat(small.train_images)
    idx = stratified_indices(ds.train_labels, 100, seed=0)
    assert torch.equal(idx, stratified_indices(ds.train_labels, 100, seed=0))


def test_record_contents(tmp_path: Path, cache_dir: Path) -> None:
    (record,) = run_tiny(cache_dir, tmp_path, val_split=0.2, select="val", latency=True, latency_batch=8).records
    assert record["schema"] == 2 and record["seed"] == 0 and record["protocol"] == {"select": "val"}
    for key in ("python", "torch", "torchvision", "timm", "harness", "git"):
        assert key in record["versions"]
    m = record["metrics"]
    latency = m["latency_ms"]
    assert set(latency) == {f"batch{b}{suffix}" for b in (1, 8) for suffix in ("", "_spread", "_repeats")}
    assert all(latency[f"batch{b}"] > 0 and latency[f"batch{b}_spread"] >= 0 for b in (1, 8))
    assert 15 <= latency["batch1_repeats"] <= 100 and 5 <= latency["batch8_repeats"] <= 100
    assert m["params_deployed"] == 78_042 and m["params_extra"] == 0 and m["flops"] > 10_000_000
    assert "val_acc" in record["curves"][0] and m["val_acc_selected"] is not None
    assert record["stages"]["baseline[resnet8]"]["epochs"] == 1
    assert record["recipe"]["epochs"] == 1 and record["dataset"]["val_split"] == 0.2
    assert record["info"]["selected"] == "val_acc"
    assert not list(tmp_path.glob(".*.tmp"))
