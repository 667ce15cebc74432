"""Attention modules: the paper's parameter counts, forward shapes, modules on the forward path, placement."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from conftest import run_tiny
from harness.kits.attention import insert_attention
from harness.core.errors import UsageError
from harness import hookimpl
from harness.models.levels import ArchSpec, ClassifierHead, LevelClassifier, count_params
from harness.plugins.manager import load_plugins
from plugins.methods.bam import BAMModule
from plugins.methods.gam import GAMModule

PLUGINS = load_plugins(entry_points=False, warn=False)


def with_method(method: str, arch: str = "resnet50", classes: int = 100, **opts) -> torch.nn.Module:
    cls = PLUGINS.methods.resolve(method).obj
    m = cls(method, opts)
    resolved = PLUGINS.archs.resolve(arch)
    model = resolved.obj(ArchSpec(arch, classes, arg=resolved.arg))
    insert_attention(model, m.build_module, m.placement())
    return model


# EncodeNet paper Table 5 (ResNet-50, CIFAR-100, CIFAR stem), exact counts from methods-reference.md
@pytest.mark.parametrize("method, expected", [("se", 26_220_196), ("bam", 24_063_319), ("cbam", 26_237_844)])
def test_resnet50_exact_param_counts(method: str, expected: int) -> None:
    assert count_params(with_method(method)) == expected


def test_official_init_of_cbam_and_bam_and_pytorch_option() -> None:
    """Jongchan/attention-module (model_resnet.py): CBAM's spatial-gate BN gamma zero with momentum 0.01,
    conv weights kaiming normal (fan_out), all biases zero; init=pytorch keeps PyTorch's defaults."""
    cbam = PLUGINS.methods.resolve("cbam").obj
    torch.manual_seed(0)
    module = cbam("cbam", {}).build_module(256)
    bn, conv = module.spatial.conv.bn, module.spatial.conv.conv
    assert torch.all(bn.weight == 0) and bn.momentum == 0.01
    assert all(torch.all(p == 0) for n, p in module.named_parameters() if n.endswith("bias"))
    fan_out = conv.weight.shape[0] * conv.weight[0, 0].numel()
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.15)
    default = cbam("cbam", {"init": "pytorch"}).build_module(256)
    assert torch.all(default.spatial.conv.bn.weight == 1) and default.spatial.conv.bn.momentum == 0.1
    assert not torch.all(default.channel.fc1.bias == 0)

    bam = PLUGINS.methods.resolve("bam").obj
    module = bam("bam", {}).build_module(1024)
    assert all(torch.all(p == 0) for n, p in module.named_parameters() if n.endswith("bias"))
    reduce = module.spatial[0]  # 1x1 conv 1024 -> 64: kaiming fan_out std sqrt(2 / 64)
    assert reduce.weight.std().item() == pytest.approx((2 / 64) ** 0.5, rel=0.05)
    assert all(torch.all(m.weight == 1) for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert not torch.all(bam("bam", {"init": "pytorch"}).build_module(1024).spatial[0].bias == 0)


@pytest.mark.parametrize("method, paper_millions", [("gam", 149.47), ("gam-gc", 57.05)])
def test_gam_param_counts_within_005m(method: str, paper_millions: float) -> None:
    assert abs(count_params(with_method(method)) / 1e6 - paper_millions) <= 0.05


@pytest.mark.parametrize("method", ["se", "cbam", "bam", "gam", "gam-gc"])
@pytest.mark.parametrize("arch", ["resnet8", "resnet18", "vgg8"])
def test_every_family_forward_shape_and_module_on_path(method: str, arch: str) -> None:
    torch.manual_seed(0)
    model = with_method(method, arch, classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        assert before.shape == (2, 10)
        inserted = [
            m
            for m in model.modules()
            if type(m).__module__.startswith(("timm.layers", "plugins.methods"))
            and type(m).__name__ in ("SEModule", "CbamModule", "BAMModule", "GAMModule")
        ]
        assert inserted, "no module was inserted"
        for module in inserted:
            for p in module.parameters():
                p.add_(torch.randn_like(p))
        after = model(x)
    assert not torch.allclose(before, after), "perturbing the modules did not change the output"


@pytest.mark.parametrize(
    "module", [BAMModule(64), BAMModule(64, fusion="sum"), GAMModule(64), GAMModule(64, groups=4, shuffle=True)]
)
def test_module_preserves_shape(module: torch.nn.Module) -> None:
    x = torch.randn(2, 64, 8, 8)
    assert module.eval()(x).shape == x.shape


def test_placements() -> None:
    assert sum(1 for m in with_method("se").modules() if type(m).__name__ == "SEModule") == 16
    assert sum(1 for m in with_method("bam").modules() if isinstance(m, BAMModule)) == 3
    assert sum(1 for m in with_method("se", "resnet20", 10).modules() if type(m).__name__ == "SEModule") == 9
    vgg = with_method("se", "vgg8", 10)
    assert sum(1 for m in vgg.modules() if type(m).__name__ == "SEModule") == 5  # after each conv level
    assert (
        sum(1 for m in with_method("se", "resnet20", 10, placement="level").modules() if type(m).__name__ == "SEModule")
        == 2
    )


def test_architecture_without_stages_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.warns(UserWarning):
        with pytest.raises(UsageError, match="needs the level interface"):
            run_tiny(cache_dir, tmp_path, methods=["se"], arch="timm:mobilenetv3_small_050")
    with pytest.raises(UsageError, match="declares no block sites"):
        run_tiny(cache_dir, tmp_path, methods=["cbam"], arch="timm:convnext_atto")


class ConvBlock(torch.nn.Module):
    """A residual block whose class name contains 'Block' and whose attention slot is called 'gate'."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(channels)
        self.gate = torch.nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.gate(self.bn(self.conv(x))))


def tiny_blocks(spec: ArchSpec, declare: bool) -> LevelClassifier:
    stem = torch.nn.Sequential(torch.nn.Conv2d(spec.in_chans, 8, 3, padding=1), torch.nn.ReLU())
    stages = [torch.nn.Sequential(ConvBlock(8), ConvBlock(8)), torch.nn.Sequential(ConvBlock(8))]
    model = LevelClassifier(stem, stages, ClassifierHead(8, spec.num_classes), spec=spec)
    if declare:
        model.declare_block_sites([("levels.0.0.gate", 8), ("levels.0.1.gate", 8), ("levels.1.0.gate", 8)])
    return model


class SitesPlugin:
    @staticmethod
    @hookimpl
    def bench_register_archs(register):
        register("declared-blocks", functools.partial(tiny_blocks, declare=True))
        register("undeclared-blocks", functools.partial(tiny_blocks, declare=False))


@pytest.mark.parametrize("method", ["se", "cbam"])
def test_declared_sites_decide_placement_not_class_names(method: str, tmp_path: Path, cache_dir: Path) -> None:
    plugins = load_plugins(entry_points=False, extra=[("sites", SitesPlugin)], warn=False)
    record = run_tiny(
        cache_dir, tmp_path, plugins=plugins, methods=[method], arch="declared-blocks", overrides={"epochs": 1}
    ).records[0]
    assert record["info"]["sites"] == ["levels.0.0.gate", "levels.0.1.gate", "levels.1.0.gate"]
    assert record["info"]["module_params"] > 0
    with pytest.raises(UsageError, match="'undeclared-blocks' declares no block sites"):
        run_tiny(cache_dir, tmp_path, plugins=plugins, methods=[method], arch="undeclared-blocks")


def test_option_validation_and_record(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(UsageError, match="not one of product, sum"):
        run_tiny(cache_dir, tmp_path, methods=["bam"], options=["bam.fusion=mean"])
    outcome = run_tiny(
        cache_dir, tmp_path, methods=["baseline", "se"], options=["se.reduction=4"], latency=True, latency_batch=4
    )
    base, se = outcome.records
    assert se["method"]["options"]["reduction"] == 4
    assert se["info"]["placement"] == "block" and se["info"]["modules"] == 3
    assert se["metrics"]["params_deployed"] == base["metrics"]["params_deployed"] + se["info"]["module_params"]
    assert se["metrics"]["flops"] > base["metrics"]["flops"] and se["metrics"]["latency_ms"]["batch1"] > 0
