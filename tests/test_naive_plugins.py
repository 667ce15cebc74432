"""Plugins written naively from docs/plugins/ (issue 32): each either works or fails loudly, in one line.

The mistakes are the ones a newcomer made: a decode cache named after the folder's name, a dataset
declared with a class count it does not have, an architecture with ten outputs whatever the dataset, an
attention method declaring its own options, a recipe registered under another name than its own. (The
executors' are in test_executor_threads.py.)
"""

from __future__ import annotations

import pathlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from harness.api import (
    ArchSpec,
    DatasetRequest,
    ImageDataset,
    Option,
    Recipe,
    cached,
    hookimpl,
)
from harness.kits.attention import AttentionMethod
from harness.testing import bench_with, plugins_loaded
from test_faults import one_line_error

BUILDS: list[Path] = []  # every folder the naive loader decoded


def pets(request: DatasetRequest) -> ImageDataset:
    """`pets:PATH`, PATH/<class>/*.png: the guide's loader, its cache file named after the folder's name."""
    folder = pathlib.Path(str(request.arg))

    def build() -> dict[str, Any]:
        BUILDS.append(folder)
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        files = [(f, c) for c, name in enumerate(classes) for f in sorted((folder / name).glob("*.png"))]
        images = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f, _ in files]))
        return {
            "images": images.permute(0, 3, 1, 2).contiguous(),
            "labels": torch.tensor([c for _, c in files]),
            "classes": classes,
        }

    data = cached(request.cache_dir / "datasets" / f"pets-{folder.name}.pt", build, source=folder)
    test = torch.arange(len(data["labels"])) % 4 == 0
    return ImageDataset(
        name=f"pets-{folder.name}",
        train_images=data["images"][~test],
        train_labels=data["labels"][~test],
        test_images=data["images"][test],
        test_labels=data["labels"][test],
        classes=data["classes"],
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        source=f"pets in {folder}",
    )


def make_folder(root: Path, seed: int) -> Path:
    """Two classes of eight random 8x8 RGB images."""
    rng = np.random.default_rng(seed)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


class Pets:
    @hookimpl
    def bench_register_datasets(self, register):
        register("pets:", pets, description="PATH/<class>/*.png")


def loaded(name: str, cache: Path) -> ImageDataset:
    """The dataset as a run gets it (checked, fingerprinted by the harness)."""
    from harness.run.prepare import load_dataset
    from harness.run.request import RunRequest

    with plugins_loaded([Pets()]) as plugins:
        return load_dataset(RunRequest(methods=["baseline"], arch="resnet8", dataset=name, cache_dir=cache), plugins)


def test_two_same_named_folders_of_other_images_give_other_fingerprints(tmp_path: Path) -> None:
    """The guide's loader names its cache file after the folder (`pets-pets.pt` for both): the harness keys
    the decoded tensors by what the loader reads, so the second folder is decoded, not served the first's."""
    one, two = make_folder(tmp_path / "a" / "pets", 1), make_folder(tmp_path / "b" / "pets", 2)
    BUILDS.clear()
    first, second = loaded(f"pets:{one}", tmp_path / "cache"), loaded(f"pets:{two}", tmp_path / "cache")
    assert first.name == second.name == "pets-pets"
    assert first.fingerprint != second.fingerprint and not torch.equal(first.train_images, second.train_images)
    assert loaded(f"pets:{one}", tmp_path / "cache").fingerprint == first.fingerprint  # from its cache file
    assert BUILDS == [one, two]


def test_a_dataset_unlike_its_declaration_stops_before_anything_runs(capsys, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "pets", 1)

    class Declared:
        @hookimpl
        def bench_register_datasets(self, register):
            register(
                "mypets",
                lambda request: pets(DatasetRequest("mypets", request.cache_dir, arg=str(folder))),
                description="ten classes, it says",
                classes=10,
                in_chans=3,
                input_size=8,
            )

    args = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "resnet8",
        "--dataset",
        "mypets",
        "--recipe",
        "smoke",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
        "--dry-run",
    ]
    with plugins_loaded([Declared()]):
        line = one_line_error(capsys, args, code=2)
    assert "declared dataset 'mypets' with classes=10 (loaded: 2)" in line


def test_a_declaration_that_is_no_count_is_refused_at_registration(capsys) -> None:
    class Declared:
        @hookimpl
        def bench_register_datasets(self, register):
            register("strpets", pets, description="a string", classes="2")

    assert bench_with([Declared()], ["list", "datasets"]) == 0
    err = capsys.readouterr().err
    assert "its declaration classes='2' is not a whole number >= 1 (skipped" in err


def ten_outputs(spec: ArchSpec) -> nn.Module:
    """The classic mistake: ten classes, whatever the dataset."""
    return nn.Sequential(nn.Flatten(), nn.Linear(spec.in_chans * spec.input_size**2, 10))


class Ten:
    @hookimpl
    def bench_register_archs(self, register):
        register("ten", ten_outputs, description="ten outputs")


def test_an_architecture_ignoring_the_class_count_is_refused_before_training(capsys, tmp_path: Path) -> None:
    """On a 2-class dataset it trained with exit 0 and recorded a plausible accuracy."""
    folder = make_folder(tmp_path / "pets", 1)
    args = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "ten",
        "--dataset",
        f"pets:{folder}",
        "--recipe",
        "smoke",
        "--epochs",
        "1",
        "--no-latency",
        "--quiet",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
    ]
    with plugins_loaded([Ten(), Pets()]):
        line = one_line_error(capsys, args, code=2)
    assert "stage baseline[ten]: its model returns logits of shape (1, 10) for one 3x8x8 image, not (1, 2)" in line
    assert not (tmp_path / "cache" / "artifacts").exists()  # nothing trained
    assert bench_with([Ten()], ["cost", "--methods", "baseline", "--arch", "ten", "--dataset", "cifar100"]) == 2


class Gate(nn.Module):
    def __init__(self, channels: int, k_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size=k_size, padding=(k_size - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x.mean((2, 3))[:, None, :]))[:, 0, :, None, None]


class Eca(AttentionMethod):
    """The attention guide's way, with an option of its own."""

    options = {"k_size": Option(3, "the 1-D kernel's size", minimum=1)}

    def make_module(self, channels: int) -> nn.Module:
        return Gate(channels, self.opts["k_size"])


class EcaPlugin:
    @hookimpl
    def bench_register_methods(self, register):
        register("my-eca", Eca, description="ECA in every block (a built-in eca exists: its own name)")


@pytest.mark.parametrize(
    "opt, code, expected",
    [
        ("my-eca.placement=level", 0, None),  # the kit's option is still there
        ("my-eca.k_size=5", 0, None),
        ("my-eca.ksize=5", 2, "method 'my-eca' has no option 'ksize'; did you mean 'k_size'?"),
        ("my-eca.k_size=0", 2, "option my-eca.k_size must be an integer >= 1, got 0"),
    ],
)
def test_an_attention_method_keeps_the_kits_options_beside_its_own(
    capsys, opt: str, code: int, expected: str | None
) -> None:
    args = ["cost", "--methods", "my-eca", "--arch", "resnet8", "--opt", opt]
    if expected is None:
        assert bench_with([EcaPlugin()], args) == 0
    else:
        with plugins_loaded([EcaPlugin()]):
            assert expected in one_line_error(capsys, args, code=code)


def test_a_recipe_registered_under_another_name_is_refused(capsys) -> None:
    """Registered as 'speedy' but named 'quick', it recorded runs as recipe 'quick', which --recipe cannot find."""

    class Renamed:
        @hookimpl
        def bench_register_recipes(self, register):
            register("speedy", Recipe("quick", epochs=1, batch_size=64, lr=0.05, weight_decay=5e-4))

    with plugins_loaded([Renamed()]) as plugins:
        assert "speedy" not in plugins.recipes and "quick" not in plugins.recipes
    assert "the Recipe is named 'quick': register it as 'quick'" in capsys.readouterr().err
