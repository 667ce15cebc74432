"""timm's attention types as methods (``attn:TYPE``), and the ECA and GC built-ins (issue 31, item 3)."""

from __future__ import annotations

import copy
import math
import sys

import pytest
import torch
from timm.layers import create_attn

from harness.core.errors import UsageError
from harness.models.levels import ArchSpec, count_params
from harness.plugins.manager import load_plugins
from harness.run.cost import measure_costs
from harness.testing import bench_with

PLUGINS = load_plugins(entry_points=False, warn=False)


def method(name: str, **opts: object):
    cls = PLUGINS.methods.resolve(name).obj
    return cls(name, cls.parse_options(name, opts))


def costs(*names: str, arch: str = "resnet20", **opts: dict) -> dict[str, tuple[int, int]]:
    """(params, MACs) of each method's deployed model, by the harness's cost code (``bench cost``'s)."""
    rows = measure_costs(PLUGINS, [method(n, **opts.get(n, {})) for n in names], arch, 10)
    return {row.method: (row.params, row.macs) for row in rows}


def built(arch: str, name: str, seed: int = 0, **opts: object) -> tuple[torch.nn.Module, dict]:
    resolved = PLUGINS.archs.resolve(arch)
    torch.manual_seed(seed)
    model = resolved.obj(ArchSpec(arch, 10, arg=resolved.arg))
    info = method(name, **opts).rewrite(model)
    return model, info


def test_the_types_are_the_installed_timms() -> None:
    """Every listed type is one timm's create_attn builds; a name it rejects is not listed; the issue's
    examples are there."""
    from plugins.methods.timm_attention import attention_types

    types = attention_types()
    assert {"eca", "gc", "se", "cbam"} <= set(types)
    get_attn = sys.modules["timm.layers.create_attn"].get_attn
    assert all(get_attn(t) is not None for t in types)
    with pytest.raises(AssertionError):
        get_attn("not-a-type")


def test_a_type_timm_cannot_build_is_one_line_before_training() -> None:
    """timm 1.0.29's GatherExcite (``ge``) fails in its own constructor; ``bottleneck`` needs a feature size."""
    failing = 0
    for name in ("attn:ge", "attn:bottleneck"):
        try:
            create_attn(name[5:], 16)
        except Exception:
            failing += 1
            with pytest.raises(UsageError, match=f"timm's create_attn\\('{name[5:]}', 16"):
                built("resnet20", name)
    assert failing  # at least one of them does fail in this timm


def test_an_unknown_type_names_the_available_ones(capsys: pytest.CaptureFixture) -> None:
    from plugins.methods.timm_attention import attention_types

    assert (
        bench_with(
            [],
            [
                "run",
                "--methods",
                "attn:nope",
                "--arch",
                "resnet8",
                "--dataset",
                "cifar10-mini",
                "--recipe",
                "smoke",
                "--dry-run",
            ],
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown attention type 'nope'" in err
    assert all(t in err for t in attention_types())


def test_se_and_cbam_through_timm_count_as_ours_once_their_options_match() -> None:
    """The same parameter and MAC counts as the ``se`` and ``cbam`` plugins; timm's defaults are not ours
    (SE: biases and C/r rounded to a multiple of 8; CBAM: no MLP biases), which the counts show."""
    ours = costs("se", "cbam")
    timm_defaults = costs("attn:se", "attn:cbam")
    assert timm_defaults["attn:se"] != ours["se"] and timm_defaults["attn:cbam"][0] != ours["cbam"][0]
    matched = costs(
        "attn:se", "attn:cbam", **{"attn:se": {"bias": "false", "rd_divisor": "1"}, "attn:cbam": {"mlp_bias": "true"}}
    )
    assert matched["attn:se"] == ours["se"] and matched["attn:cbam"] == ours["cbam"]
    base = costs("baseline")["baseline"]
    assert ours["se"][0] > base[0] and ours["se"][1] > base[1]  # the modules are counted, not skipped


def test_timm_options_reach_the_module() -> None:
    model, info = built("resnet20", "attn:gc", rd_ratio="0.25", fuse_add="true", fuse_scale="false")
    gcs = [m for m in model.modules() if type(m).__name__ == "GlobalContext"]
    assert len(gcs) == info["modules"] == 9
    assert all(g.mlp_scale is None and g.mlp_add.fc1.out_channels == g.conv_attn.in_channels // 4 for g in gcs)


def test_eca_kernel_follows_the_papers_formula() -> None:
    """k = |log2(C)/gamma + b/gamma|_odd (gamma 2, b 1): the odd number nearest t, timm's tie (t even) rounding
    up, at least 3; on ResNet-50's widths 256..2048. kernel_size=K fixes it."""
    model, info = built("resnet50", "eca")
    ecas = [m for m in model.modules() if type(m).__name__ == "EcaModule"]
    assert len(ecas) == info["modules"] == 16
    widths = [site.channels for site in model.attention_sites("block")]
    assert sorted(set(widths)) == [256, 512, 1024, 2048]
    for channels, eca in zip(widths, ecas):
        t = (math.log2(channels) + 1) / 2
        nearest = min(range(1, 20, 2), key=lambda k: (abs(k - t), -k))  # a tie: the larger
        assert eca.conv.kernel_size == (max(3, nearest),) and eca.conv.bias is None
    fixed, _ = built("resnet20", "eca", kernel_size="5")
    assert {m.conv.kernel_size for m in fixed.modules() if type(m).__name__ == "EcaModule"} == {(5,)}
    with pytest.raises(UsageError, match="even"):
        built("resnet20", "eca", kernel_size="4")


def test_gc_is_the_official_block_and_starts_as_the_identity() -> None:
    """GCNet's ContextBlock (ratio 1/16, att pooling, channel_add): per site C + 1 (attention conv),
    C*r + r + 2r + r*C + C (transform with LayerNorm) parameters, r = int(C/16); official init: the added
    term is zero, so the network computes what it did without the blocks."""
    resolved = PLUGINS.archs.resolve("resnet20")
    torch.manual_seed(0)
    plain = resolved.obj(ArchSpec("resnet20", 10, arg=resolved.arg)).eval()
    model, info = built("resnet20", "gc")
    widths = [16] * 3 + [32] * 3 + [64] * 3
    assert info["module_params"] == sum(c + 1 + 2 * c * (c // 16) + 3 * (c // 16) + c for c in widths)
    assert count_params(model) == count_params(plain) + info["module_params"]
    gcs = [m for m in model.modules() if type(m).__name__ == "GlobalContext"]
    assert all(g.mlp_scale is None and g.mlp_add.norm.eps == 1e-5 and torch.all(g.conv_attn.bias == 0) for g in gcs)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), plain(x))
    timm_init, _ = built("resnet20", "gc", init="pytorch")
    assert not all(
        torch.all(m.mlp_add.fc2.bias == 0) for m in timm_init.modules() if type(m).__name__ == "GlobalContext"
    )


def test_gc_fusion_options() -> None:
    scale, _ = built("resnet20", "gc", fusion="scale")
    both, _ = built("resnet20", "gc", fusion="both")
    g_scale = next(m for m in scale.modules() if type(m).__name__ == "GlobalContext")
    g_both = next(m for m in both.modules() if type(m).__name__ == "GlobalContext")
    assert g_scale.mlp_add is None and g_scale.mlp_scale is not None
    assert g_both.mlp_add is not None and g_both.mlp_scale is not None


def test_the_route_is_a_method_like_the_others() -> None:
    """attn:eca with the paper's adaptive kernel is the eca built-in, module for module."""
    a, _ = built("resnet20", "attn:eca")
    b, _ = built("resnet20", "eca")
    assert [type(m).__name__ for m in a.modules()] == [type(m).__name__ for m in b.modules()]
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), copy.deepcopy(b).state_dict().values()))
