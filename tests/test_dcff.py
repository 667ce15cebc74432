"""Issue 13: DCFF (dynamic-coded filter fusion): the fusion, the compact architecture against the paper's
VGG-16 figures, and a tiny training run whose record measures the compact model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.func import functional_call

from conftest import run_tiny
from harness.core.errors import UsageError
from harness.models.cost import count_cost
from harness.models.levels import ArchSpec, count_params
from harness.plugins.manager import load_plugins
from harness.results.reference import table_values
from plugins.methods.dcff.channels import fused_layers, keep_ratios, kept_widths, narrowed
from plugins.methods.dcff.fusion import TemperatureSchedule, fusion_matrix, importance, log_similarity
from plugins.methods.dcff.method import FusionObjective

CPU = torch.device("cpu")


def build(arch: str, classes: int = 10) -> nn.Module:
    factory, _ = load_plugins(warn=False).resolve_arch(arch)
    torch.manual_seed(0)
    return factory(ArchSpec(arch, classes))


def compact_of(arch: str, keep: str) -> tuple[nn.Module, nn.Module, list, list[int]]:
    full = build(arch)
    layers = fused_layers(full, "dcff")
    widths = kept_widths(layers, keep_ratios(keep, layers, arch, "dcff"))
    return narrowed(full, layers, widths), full, layers, widths


def paper(metric: str) -> float:
    return next(v.value for v in table_values("dcff") if v.method == "dcff" and v.metric == metric)


def test_temperature_schedule_runs_from_start_to_end() -> None:
    s = TemperatureSchedule(1.0, 1e4, 1.0, epochs=300)
    assert s.at(0) == pytest.approx(1.0) and s.at(300) == pytest.approx(1e4)
    assert all(s.at(e) < s.at(e + 1) for e in range(10))
    assert TemperatureSchedule(2.0, 2.0, 1.0, 5).at(3) == 2.0


def test_fusion_sharpens_to_the_kept_filters_and_scores_stay_finite() -> None:
    torch.manual_seed(0)
    w = torch.randn(8, 4, 3, 3)
    soft, kept = fusion_matrix(w, 3, temperature=0.01)
    assert soft.shape == (3, 8) and torch.allclose(soft.sum(1), torch.ones(3)) and (soft > 0.05).all()
    hard, kept = fusion_matrix(w, 3, temperature=1e4)
    assert torch.equal(kept, kept.sort().values)
    assert torch.allclose(hard, torch.eye(8)[kept])  # one-hot on the kept filters themselves
    scores = importance(log_similarity(w, 1e4))
    assert torch.isfinite(scores).all()
    # in the one-hot limit a filter's score is T times its summed distance to the others
    dist = torch.cdist(w.reshape(8, -1), w.reshape(8, -1)).sum(0)
    assert torch.allclose(scores / 1e4, dist, rtol=1e-3)


def test_compact_vgg16_matches_the_papers_figures() -> None:
    compact, full, layers, widths = compact_of("vgg16", "paper")
    assert widths == [32, 32, 76, 76, 166, 166, 166, 76, 76, 76, 76, 76, 76]
    params = count_params(compact)
    assert abs(params / 1e6 - paper("params_millions")) < 0.015  # 1,071,248 against the paper's "1.06M"
    assert compact(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # the paper's 72.77M "FLOPs": thop on the authors' VGG-16 layout (a max-pool before the last block),
    # counting conv multiply-adds plus one per conv-bias output element and two per BatchNorm element
    compact.levels[3].insert(0, nn.MaxPool2d(2))
    counted = {"macs": 0, "extra": 0}

    def hook(module: nn.Module, _inp, out: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            counted["macs"] += out.numel() * module.in_channels * math.prod(module.kernel_size)
            counted["extra"] += out.numel()
        elif isinstance(module, nn.BatchNorm2d):
            counted["extra"] += 2 * out.numel()
        elif isinstance(module, nn.Linear):
            counted["macs"] += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in compact.modules()]
    compact.eval()(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    assert round((counted["macs"] + counted["extra"]) / 1e6, 2) == paper("macs_millions")
    assert count_cost(compact, (3, 32, 32), CPU).macs == counted["macs"]  # our MAC counter agrees


def test_resnet_fuses_the_inner_convs_and_other_archs_are_refused() -> None:
    compact, full, layers, widths = compact_of("resnet20", "0.5")
    assert len(layers) == 9 and all(layer.conv.endswith("conv1") for layer in layers) and set(widths) == {8, 16, 32}
    assert compact(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert count_params(compact) < count_params(full)
    assert [i.channels for i in compact.level_info] == [i.channels for i in full.level_info]  # block outputs kept
    with pytest.raises(UsageError, match="give one ratio, or 9"):
        keep_ratios("0.5,0.5", layers, "resnet20", "dcff")
    with pytest.raises(UsageError, match="keep ratios for vgg16 only"):
        keep_ratios("paper", layers, "resnet20", "dcff")
    with pytest.raises(UsageError, match=r"must lie in \(0, 1\]"):
        keep_ratios("1.5", layers, "resnet20", "dcff")
    with pytest.raises(UsageError, match="is neither"):
        fused_layers(build("resnet18"), "dcff")


def test_training_flows_through_the_banks_and_eval_holds_the_fused_filters() -> None:
    compact, full, layers, widths = compact_of("vgg8", "0.5")
    objective = FusionObjective(compact, full, layers, widths, TemperatureSchedule(epochs=2), batches_per_epoch=2)
    objective.train()
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    out = objective(x, y)
    assert out.logits.shape == (4, 10)
    out.losses["ce"].backward()
    assert all(bank.weight.grad is not None and bank.weight.grad.abs().sum() > 0 for bank in objective.banks)
    assert all(compact.get_submodule(layer.conv).weight.grad is None for layer in layers)
    assert objective.extra_params() == sum(count_params(b) for b in objective.banks) > 0
    with torch.no_grad():
        for bank in objective.banks:
            bank.weight.add_(0.01)
    objective.eval()
    fused = functional_call(compact, objective.fused_parameters(), (x,))
    assert torch.allclose(compact(x), fused, atol=1e-5)  # the deployed compact model is the fused network
    objective.train()
    for _ in range(2):  # the step counter crosses an epoch: the fusion is recomputed from the banks
        objective(x, y)
    assert int(objective.step) == 3


def test_tiny_run_deploys_and_measures_the_compact_model(tmp_path: Path, cache_dir: Path) -> None:
    outcome = run_tiny(cache_dir, tmp_path, methods=["baseline", "dcff"], options=["dcff.keep=0.5"])
    by = {r["method"]["name"]: r["metrics"] for r in outcome.records}
    base, dcff = by["baseline"], by["dcff"]
    compact, full, _, _ = compact_of("resnet8", "0.5")
    assert dcff["params_deployed"] == count_params(compact) < base["params_deployed"] == count_params(full)
    assert dcff["macs"] == count_cost(compact, (3, 32, 32), CPU).macs < base["macs"]
    assert dcff["params_extra"] > 0  # the full-width filter banks, training-time only
    assert dcff["top1_last"] == dcff["top1_selected"]  # what the epochs evaluated is what was deployed
    record = next(r for r in outcome.records if r["method"]["name"] == "dcff")
    assert [layer["kept"] for layer in record["info"]["fused_layers"]] == [8, 16, 32]
    assert record["info"]["full_model"]["params"] == base["params_deployed"]


def test_both_methods_are_listed_with_their_source(capsys) -> None:
    from harness.cli import main

    assert main(["list", "methods"]) == 0
    listed = capsys.readouterr().out
    entries = {e.name: e for e in load_plugins(warn=False).methods.entries()}
    for name, source in (("dcff", "Lin et al"), ("filter-ft", "Bianchi et al")):
        assert name in listed and source in entries[name].description
