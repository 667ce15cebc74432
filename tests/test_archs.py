"""Architectures: exact parameter counts of the reference implementations and the level interface."""

from __future__ import annotations

import pytest
import timm
import torch

from harness.models.levels import ArchSpec, LevelClassifier, count_params
from harness.plugins.manager import load_plugins

# methods-reference.md (RepDistiller layouts): weights, biases and BN affine; no running statistics.
REFERENCE = {
    "resnet8": (78_042, 83_892),
    "resnet20": (272_474, 278_324),
    "resnet32": (466_906, 472_756),
    "resnet56": (855_770, 861_620),
    "resnet110": (1_730_714, 1_736_564),
    "resnet8x4": (1_210_410, 1_233_540),
    "resnet32x4": (7_410_730, 7_433_860),
    "vgg8": (3_918_858, 3_965_028),
    "vgg13": (9_416_010, 9_462_180),
}

PLUGINS = load_plugins(entry_points=False, warn=False)


def build(name: str, classes: int = 10, chans: int = 3, size: int = 32) -> torch.nn.Module:
    resolved = PLUGINS.archs.resolve(name)
    return resolved.obj(ArchSpec(name, classes, chans, size, arg=resolved.arg))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_cifar_param_counts_match_reference(name: str) -> None:
    assert (count_params(build(name, 10)), count_params(build(name, 100))) == REFERENCE[name]


def test_resnet50_cifar_stem_param_count() -> None:
    assert count_params(build("resnet50", 100)) == 23_705_252
    # the same model with timm's ImageNet stem, as the reference doc states
    assert count_params(timm.create_model("resnet50", num_classes=100)) == 23_712_932


@pytest.mark.parametrize(
    "name", ["resnet8", "resnet8x4", "vgg8", "vgg11", "resnet18", "timm:resnet18", "timm:convnext_atto"]
)
def test_stage_interface_reproduces_forward(name: str) -> None:
    model = build(name, 10).eval()
    assert isinstance(model, LevelClassifier)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
        feats = model.forward_levels(x)
        assert len(feats) == model.num_levels + 1 == len(model.level_info)
        for info, f in zip(model.level_info, feats):
            assert f.shape[1:] == (info.channels, info.size, info.size)
        for k in range(model.num_levels + 1):
            torch.testing.assert_close(model.forward_from(model.forward_features(x, upto=k), k), logits)
        torch.testing.assert_close(model.head(feats[-1]), logits)
        assert model.head.embed(feats[-1]).shape == (2, model.head.embed_dim)


def test_cifar_resnet_features_follow_crd_layout() -> None:
    model = build("resnet20", 100)
    sizes = [(i.channels, i.size) for i in model.level_info]
    assert sizes == [(16, 32), (16, 32), (32, 16), (64, 8)]  # f0..f3 of RepDistiller's is_feat
    vgg = build("vgg8", 100)
    assert [(i.channels, i.size) for i in vgg.level_info] == [(64, 32), (128, 16), (256, 8), (512, 4), (512, 4)]


@pytest.mark.parametrize("name", ["resnet8", "vgg8", "resnet18"])
def test_grayscale_and_other_input_sizes(name: str) -> None:
    model = build(name, 7, chans=1, size=28)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 7)


def test_opaque_timm_model_still_classifies() -> None:
    with pytest.warns(UserWarning, match="level interface"):
        model = build("timm:mobilenetv3_small_050", 10)
    assert not isinstance(model, LevelClassifier)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
