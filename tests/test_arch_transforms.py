"""ResMLP (timm blocks), WaveCNet (wavelet downsampling) and low-rank filters: counts, shapes, tiny runs."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import read_records, run_tiny
from harness.core.errors import UsageError
from harness.models.cost import count_cost
from harness.models.levels import ArchSpec, ClassifierHead, LevelClassifier, count_params
from harness.plugins.manager import load_plugins
from harness.cli import main
from plugins.archs.resmlp import resmlp
from plugins.methods.lowrank import BasisConv, LowRank
from plugins.methods.wavecnet.dwt import WaveletLowpass, lowpass_filter
from plugins.methods.wavecnet.method import WaveCNet

CPU = torch.device("cpu")


def arch(name: str, classes: int = 10) -> nn.Module:
    factory, arg = load_plugins(warn=False).resolve_arch(name)
    torch.manual_seed(0)
    return factory(ArchSpec(name, classes, arg=arg))


# ---- ResMLP ----------------------------------------------------------------------------------------------


def resmlp_params(depth: int, dim: int, patch: int, classes: int, size: int = 32, ratio: int = 4) -> int:
    tokens = (size // patch) ** 2
    stem = 3 * patch * patch * dim + dim
    block = (
        2 * (2 * dim)
        + (tokens * tokens + tokens)
        + (dim * ratio * dim + ratio * dim)
        + (ratio * dim * dim + dim)
        + 2 * dim
    )  # two affines, token-mixing linear, channel MLP, two LayerScales
    return stem + depth * block + 2 * dim + dim * classes + classes  # final affine, classifier


def test_resmlp_parameter_count_and_shapes() -> None:
    model = resmlp(ArchSpec("resmlp", 100))
    assert count_params(model) == resmlp_params(12, 384, 4, 100)  # S12 widths, 64 patches of 4x4
    small = arch("resmlp:depth=2,dim=32,patch=8")
    assert count_params(small) == resmlp_params(2, 32, 8, 10)
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert small.blocks[0].ls1.detach().max() == pytest.approx(1e-4)  # timm's LayerScale init up to depth 12
    with pytest.raises(UsageError, match="does not divide"):
        arch("resmlp:patch=5")


def test_resmlp_trains_and_stage_methods_refuse_it(cache_dir, tmp_path) -> None:
    run_tiny(cache_dir, tmp_path, arch="resmlp:depth=2,dim=32")
    (record,) = read_records(tmp_path)
    assert record["metrics"]["params_deployed"] == resmlp_params(2, 32, 4, 10) and record["metrics"]["macs"] > 0
    with pytest.raises(UsageError, match="needs the level interface"):
        WaveCNet("wavecnet").transform(arch("resmlp:depth=1,dim=16"))


# ---- WaveCNet ----------------------------------------------------------------------------------------------


def test_haar_lowpass_is_the_2x2_average_times_two_and_drops_high_frequencies() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(WaveletLowpass("haar")(x), 2 * F.avg_pool2d(x, 2), atol=1e-6)
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None]) % 2 * 2.0 - 1  # highest frequency only
    assert WaveletLowpass("haar")(checker[None, None]).abs().max() < 1e-6


@pytest.mark.parametrize("wavelet", ["haar", "db2", "bior2.2", "sym4"])
@pytest.mark.parametrize("size", [16, 15])
def test_lowpass_equals_pywavelets_periodization(wavelet: str, size: int) -> None:
    pywt = pytest.importorskip("pywt")
    x = torch.randn(size, size, dtype=torch.float64)
    expected = pywt.dwt2(x.numpy(), wavelet, mode="periodization")[0]
    got = WaveletLowpass(wavelet).double()(x[None, None])[0, 0].numpy()
    assert got.shape == expected.shape and abs(got - expected).max() < 1e-6


def test_haar_needs_no_library_and_others_say_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pywt", None)  # PyWavelets not installed
    assert lowpass_filter("haar") == pytest.approx((2**-0.5, 2**-0.5))
    with pytest.raises(UsageError, match=r"encodenet-bench\[wavelets\]"):
        lowpass_filter("db2")


def test_wavecnet_replaces_the_declared_sites() -> None:
    model = arch("resnet8")
    before, macs_before = count_params(model), count_cost(model, (3, 32, 32), CPU).macs
    info = WaveCNet("wavecnet").transform(model)
    assert info["sites"] == [
        "levels.1.0.conv1",
        "levels.1.0.downsample.0",
        "levels.2.0.conv1",
        "levels.2.0.downsample.0",
    ]
    block = model.levels[1][0]
    assert isinstance(block.conv1[1], WaveletLowpass) and block.conv1[0].stride == (1, 1)
    assert isinstance(block.downsample[0][0], WaveletLowpass)  # 1x1 shortcut: DWT first, the cheaper order
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10) and count_params(model) == before
    assert count_cost(model, (3, 32, 32), CPU).macs > macs_before  # strided convs now at full resolution
    vgg = arch("vgg8")
    WaveCNet("wavecnet").transform(vgg)
    assert [type(vgg.levels[i][0]).__name__ for i in range(4)] == ["WaveletLowpass"] * 3 + ["Conv2d"]
    assert vgg(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_wavecnet_refuses_an_architecture_without_downsampling_sites() -> None:
    stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
    model = LevelClassifier(
        stem,
        [nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1))],
        ClassifierHead(8, 10),
        spec=ArchSpec("plain", 10),
    )
    with pytest.raises(UsageError, match="'plain' declares no downsampling sites"):
        WaveCNet("wavecnet").transform(model)


# ---- low-rank filters --------------------------------------------------------------------------------------


def expected_lowrank_params(model: nn.Module, per_conv) -> int:
    total = count_params(model)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            bias = m.out_channels if m.bias is not None else 0
            total += (
                per_conv(m.in_channels, m.out_channels, min(m.in_channels, m.out_channels))
                + bias
                - m.weight.numel()
                - bias
            )
    return total


def test_lowrank_sequential_counts_and_is_a_low_rank_kxk_filter() -> None:
    for name in ("resnet8", "vgg8"):
        model = arch(name)
        expected = expected_lowrank_params(model, lambda cin, cout, m: 3 * cin * m + 3 * m * cout)
        info = LowRank("lowrank").transform(model)
        assert count_params(model) == expected and info["replaced"] > 0
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) for m in model.modules())
    pair = arch("resnet8").levels[1][0].conv1  # a 16 -> 32 stride-2 3x3 conv
    LowRank("lowrank").transform(holder := nn.Sequential(pair))
    horizontal, vertical = holder[0][0], holder[0][1]
    kernel = torch.einsum("mciw,omhj->ochw", horizontal.weight, vertical.weight)  # the composite 3x3 filter
    x = torch.randn(1, 16, 9, 9)
    assert torch.allclose(holder(x), F.conv2d(x, kernel, stride=2, padding=1), atol=1e-5)


def test_lowrank_basis_variant_counts() -> None:
    model = arch("resnet8")
    expected = expected_lowrank_params(model, lambda cin, cout, m: 3 * cin * m + m * cout)
    LowRank("lowrank", {"variant": "basis"}).transform(model)
    assert count_params(model) == expected
    assert sum(isinstance(m, BasisConv) for m in model.modules()) == 7  # stem + 6 block convs of resnet8
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_transform_methods_train_and_record_their_changes(cache_dir, tmp_path) -> None:
    run_tiny(cache_dir, tmp_path, methods=["baseline", "wavecnet", "lowrank"])
    by_method = {r["method"]["name"]: r for r in read_records(tmp_path)}
    base, wave, low = by_method["baseline"], by_method["wavecnet"], by_method["lowrank"]
    assert wave["metrics"]["params_deployed"] == base["metrics"]["params_deployed"]
    assert wave["metrics"]["macs"] > base["metrics"]["macs"] and len(wave["info"]["transform"]["sites"]) == 4
    assert low["metrics"]["params_deployed"] < base["metrics"]["params_deployed"]
    assert low["metrics"]["macs"] < base["metrics"]["macs"]
    assert low["info"]["transform"]["params_after"] == low["metrics"]["params_deployed"]


def test_list_shows_the_systems_with_their_sources(capsys) -> None:
    plugins = load_plugins(warn=False)
    for kind, name, source in (
        ("archs", "msdnet", "Huang et al"),
        ("archs", "resmlp", "Touvron et al"),
        ("methods", "anytime", "Huang et al"),
        ("methods", "wavecnet", "Li et al"),
        ("methods", "lowrank", "Ioannou et al"),
    ):
        assert source in plugins.registry(kind).resolve(name).entry.description
        assert main(["list", kind]) == 0
        assert name in capsys.readouterr().out
