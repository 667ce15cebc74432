"""MSDNet (multi-exit architecture) and the ``anytime`` method: structure, loss, budgeted evaluation, runs."""

from __future__ import annotations

import matplotlib
import pytest
import torch

from conftest import read_records, run_tiny, tiny_request
from harness.core.errors import UsageError
from harness.core.progress import Reporter
from harness.models.cost import count_cost
from harness.models.exits import exit_costs
from harness.models.levels import ArchSpec, count_params
from harness.plugins.manager import load_plugins
from harness.results.plots import anytime
from harness.run.prepare import prepare
from plugins.archs.msdnet import layers_per_block, msdnet, scales_of_layer
from plugins.methods.anytime.budget import (
    ExitLogits,
    apply_thresholds,
    budgeted_curve,
    exit_distribution,
    find_thresholds,
)
from plugins.methods.anytime.method import MultiExitObjective, parse_weights

TINY = "msdnet:blocks=2,base=1,step=1,channels=4,growth=2"
CPU = torch.device("cpu")


def build(name: str, classes: int = 10) -> torch.nn.Module:
    return msdnet(ArchSpec(name, classes, arg=name.partition(":")[2] or None))


def test_default_is_the_authors_cifar_anytime_configuration() -> None:
    model = build("msdnet", 100)
    assert model.layers_per_block == [4, 2, 2, 2, 2, 2, 2] and model.num_exits == 7
    assert layers_per_block({"blocks": 5, "step": 1, "base": 1, "stepmode": "lin"}) == [1, 2, 3, 4, 5]
    # 16 layers, "max" pruning: a scale is dropped at layers 7 and 13 (one third each)
    schedule = [scales_of_layer(t, 16) for t in range(1, 17)]
    assert schedule[5] == (3, 3) and schedule[6] == (3, 2) and schedule[7] == (2, 2) and schedule[12] == (2, 1)
    x = torch.randn(2, 3, 32, 32)
    feats = model.first(x)
    assert [f.shape[-1] for f in feats] == [32, 16, 8]
    for block in model.blocks:
        feats = block(feats)
    assert len(feats) == 1 and feats[0].shape[-1] == 8  # only the coarsest scale is left at the end


def test_hand_counted_parameters_of_a_one_layer_msdnet() -> None:
    # first layer: 3x3 convs 3->4, 4->8 (stride 2), 8->16 (stride 2), each with BN (2 params per channel)
    first = (27 * 4 + 8) + (36 * 8 + 16) + (72 * 16 + 32)
    # one MSD layer, growth 2 (x1, x2, x4 per scale), bottleneck min(C_in, factor * C_out), BN after each conv
    scale0 = (4 * 2 + 4) + (18 * 2 + 4)  # 1x1 4->2, 3x3 2->2
    scale1 = ((4 * 2 + 4) + (18 * 2 + 4)) + ((8 * 4 + 8) + (36 * 2 + 4))  # from finer 4->2->2, same 8->4->2
    scale2 = ((8 * 8 + 16) + (72 * 4 + 8)) + ((16 * 16 + 32) + (144 * 4 + 8))  # finer 8->8->4, same 16->16->4
    classifier = (9 * 24 * 128 + 256) + (9 * 128 * 128 + 256) + (128 * 10 + 10)  # on (4 + 2) x 4 channels
    model = build("msdnet:blocks=1,base=1,channels=4,growth=2")
    assert count_params(model) == first + scale0 + scale1 + scale2 + classifier


def test_parameter_counts_equal_the_authors_pytorch_code() -> None:
    # kalviny/MSDNet-PyTorch models/msdnet.py built with its README's CIFAR-100 arguments (anytime: nBlocks 7,
    # even, step 2, base 4; budgeted: nBlocks 5, lin_grow, step 1, base 1; nChannels 16, growthRate 6,
    # grFactor/bnFactor 1-2-4, reduction 0.5, prune max) has exactly these parameters; with the same weights
    # copied in, every exit's logits are identical to ours (checked in review against that code)
    assert count_params(build("msdnet", 100)) == 3_067_960
    assert count_params(build("msdnet:blocks=5,step=1,base=1,stepmode=lin", 100)) == 2_078_924


def test_exits_shapes_and_cumulative_costs() -> None:
    model = build(TINY).eval()
    x = torch.randn(3, 3, 32, 32)
    outs = model.forward_exits(x)
    assert [o.shape for o in outs] == [torch.Size([3, 10])] * 2
    assert torch.allclose(model(x), outs[-1]) and len(model.forward_exits(x, upto=1)) == 1
    costs = exit_costs(model, (3, 32, 32), CPU)
    assert costs[0].macs < costs[1].macs
    assert costs[1].macs > count_cost(model, (3, 32, 32), CPU).macs  # reaching exit 2 pays exit 1's classifier


def test_bad_architecture_options_are_one_line_errors() -> None:
    for name, message in (
        ("msdnet:blocks=x", "expected an int"),
        ("msdnet:depth=3", "has no option 'depth'"),
        ("msdnet:blokcs=3", "did you mean 'blocks'"),
        ("msdnet:blocks", "options are KEY=VALUE"),
        ("msdnet:stepmode=odd", "not one of even, lin"),
        ("msdnet:growth=3", "must be even"),
        ("msdnet:channels=-4", "msdnet.channels must be an integer > 0, got -4"),
    ):
        with pytest.raises(UsageError, match=message):
            build(name)


def test_weighted_loss_reaches_exactly_the_weighted_exits() -> None:
    model = build(TINY)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    out = MultiExitObjective(model, parse_weights("uniform", 2))(x, y)
    assert set(out.losses) == {"ce_exit1", "ce_exit2"}
    sum(out.losses.values()).backward()
    assert model.classifiers[0].fc.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    out = MultiExitObjective(model, parse_weights("0,1", 2))(x, y)
    sum(out.losses.values()).backward()
    assert model.classifiers[0].fc.weight.grad is None or model.classifiers[0].fc.weight.grad.abs().sum() == 0
    for bad in ("1,2,3", "a,b", "0,0"):
        with pytest.raises(UsageError):
            parse_weights(bad, 2)


def synthetic(n: int = 400, exits: int = 3, seed: int = 0) -> ExitLogits:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (n,), generator=g)
    logits = []
    for k in range(exits):  # deeper exits are more often right
        lg = torch.randn(n, 5, generator=g)
        lg[torch.arange(n), labels] += 1.0 + k
        logits.append(lg)
    return ExitLogits.from_logits(logits, labels)


def test_thresholds_give_each_exit_its_share_and_budgets_are_met_on_held_out() -> None:
    held, test = synthetic(seed=0), synthetic(seed=1)
    shares = exit_distribution(0.5, 3)
    outcome = apply_thresholds(held, find_thresholds(held, shares), [1.0, 2.0, 3.0])
    assert outcome.exit_shares[0] == pytest.approx(float(shares[0]), abs=0.01)
    assert outcome.exit_shares[1] == pytest.approx(float(shares[1]), abs=0.01)
    costs = [10.0, 20.0, 30.0]
    curve = budgeted_curve(held, test, costs, [10.0, 15.0, 20.0, 30.0])
    assert [p["budget_macs"] for p in curve] == [10.0, 15.0, 20.0, 30.0]
    assert all(p["held_out_macs"] <= p["budget_macs"] + 1e-9 for p in curve)
    assert curve[0]["test_exit_shares"] == [1.0, 0.0, 0.0]  # the first exit's cost: everyone leaves there
    accs = test.accuracy_per_exit()
    assert curve[0]["test_acc"] == pytest.approx(accs[0]) and accs[0] < accs[-1]


def test_anytime_run_records_exits_budgets_and_plots(cache_dir, tmp_path) -> None:
    out = tmp_path / "runs"
    run_tiny(cache_dir, out, methods=["anytime"], arch=TINY, val_split=0.2, options=["anytime.budgets=4"])
    run_tiny(cache_dir, out, methods=["baseline"], val_split=0.2)  # resnet8, the same data and recipe
    records = read_records(out)
    record = next(r for r in records if r["method"]["name"] == "anytime")
    info = record["info"]["anytime"]
    assert [e["exit"] for e in info["exits"]] == [1, 2] and info["thresholds_on"] == "val"
    assert info["exits"][0]["macs"] < info["exits"][1]["macs"] and 0 < len(info["budgeted"]) <= 4
    assert {"train_ce_exit1", "train_ce_exit2"} <= set(record["curves"][0])
    assert (tmp_path / "runs" / record["figures"]["anytime"].split("/runs/")[1]).exists()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text in the SVG
        written = anytime(records, tmp_path / "plots")
    assert len(written) == 2 and all(p.exists() for p in written)  # one figure (PNG + SVG) with the baseline
    svg = next(p for p in written if p.suffix == ".svg").read_text()
    assert "resnet8 baseline" in svg  # the other run is a point, named in the legend


def test_anytime_refuses_single_exit_archs_and_val_thresholds_without_split(cache_dir, tmp_path) -> None:
    plugins = load_plugins(warn=False)
    with pytest.raises(UsageError, match="needs a multi-exit architecture"):
        prepare(tiny_request(cache_dir, tmp_path, methods=["anytime"]), plugins, Reporter())
    with pytest.raises(UsageError, match="needs a validation split"):
        prepare(
            tiny_request(cache_dir, tmp_path, methods=["anytime"], arch=TINY, options=["anytime.thresholds=val"]),
            plugins,
            Reporter(),
        )
