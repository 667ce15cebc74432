"""The CRD benchmark's feature distillers AT, NST, VID, SP, PKT, CC: each loss (and its gradients) equals
RepDistiller's on the golden fixtures; each objective compares the features RepDistiller's training loop
compares; a tiny real run of each completes; pairs that cannot be bridged are refused before training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import run_tiny
from golden import load
from harness.cli import main
from harness.core.errors import UsageError
from harness.kits.distill import Outputs, kd_loss, level_pairs, run_levels
from harness.models.levels import ArchSpec
from harness.plugins.manager import load_plugins
from plugins.methods.at import at_loss
from plugins.methods.cc import cc_loss
from plugins.methods.nst import nst_loss
from plugins.methods.pkt import pkt_loss
from plugins.methods.sp import sp_loss
from plugins.methods.vid import VIDRegressor

PLUGINS = load_plugins(entry_points=False, warn=False)
METHODS = ["at", "sp", "cc", "pkt", "nst", "vid"]


def net(name: str, classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(0)
    return PLUGINS.archs.resolve(name).obj(ArchSpec(name, classes))


def method(name: str, **options: object):
    return PLUGINS.methods.resolve(name).obj(name, options)


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal to float32 rounding: relative 1e-5, and an absolute floor of 1e-6 of the largest expected value
    (so that small entries of a gradient are not compared below the precision of its large ones)."""
    torch.testing.assert_close(
        actual.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max())
    )


def level_fixture(name: str) -> tuple[object, list[torch.Tensor], list[torch.Tensor]]:
    g = load(name)
    s = [g.inputs[f"s{i}"].requires_grad_() for i in range(3)]
    t = [g.inputs[f"t{i}"] for i in range(3)]
    return g, s, t


def check_grads(g, loss: torch.Tensor, named: dict[str, torch.Tensor]) -> None:
    close(loss, g.expected["loss"])
    for key, grad in zip(named, torch.autograd.grad(loss, list(named.values()))):
        close(grad, g.expected[f"grad.{key}"])


# ---- golden: our losses against RepDistiller's, run outside the project (scripts/golden) ----


def test_at_equals_repdistiller() -> None:
    g, s, t = level_fixture("at")
    loss = sum(at_loss(a, b, g.params["p"]) for a, b in zip(s, t))
    check_grads(g, loss, {f"s{i}": f for i, f in enumerate(s)})


def test_nst_equals_repdistiller() -> None:
    g, s, t = level_fixture("nst")
    check_grads(g, sum(nst_loss(a, b) for a, b in zip(s, t)), {f"s{i}": f for i, f in enumerate(s)})


def test_sp_equals_repdistiller() -> None:
    g = load("sp")
    s = g.inputs["s"].requires_grad_()
    check_grads(g, sp_loss(s, g.inputs["t"]), {"s": s})


def test_pkt_equals_repdistiller() -> None:
    g = load("pkt")
    s = g.inputs["s"].requires_grad_()
    check_grads(g, pkt_loss(s, g.inputs["t"]), {"s": s})


def test_cc_equals_repdistiller_with_its_embeddings() -> None:
    g = load("cc")
    s, t = g.inputs["s"].requires_grad_(), g.inputs["t"]
    objective = method("cc", feat_dim=g.params["feat_dim"]).make_objective(net("resnet8"), net("resnet14"))
    # the objective's embeddings, re-made at the fixture's widths; the same module types and parameter names
    embed_s = type(objective.embed_s)(s.shape[1], g.params["feat_dim"])
    embed_t = type(objective.embed_t)(t.shape[1], g.params["feat_dim"])
    for prefix, module in (("embed_s.linear.", embed_s), ("embed_t.linear.", embed_t)):  # LinearEmbed.linear
        module.load_state_dict({k[len(prefix) :]: v for k, v in g.inputs.items() if k.startswith(prefix)})
    loss = cc_loss(embed_s(s), embed_t(t))
    named = {
        "s": s,
        **{f"embed_s.linear.{k}": p for k, p in embed_s.named_parameters()},
        **{f"embed_t.linear.{k}": p for k, p in embed_t.named_parameters()},
    }
    check_grads(g, loss, named)


def test_vid_equals_repdistiller_with_its_parameters() -> None:
    g, s, t = level_fixture("vid")
    modules = [
        VIDRegressor(a.shape[1], b.shape[1], b.shape[1], g.params["init_pred_var"], g.params["eps"])
        for a, b in zip(s, t)
    ]
    for k, module in enumerate(modules):  # our initial variances are RepDistiller's, to 2 ulp
        torch.testing.assert_close(module.log_scale.detach(), g.expected[f"init.{k}.log_scale"], rtol=2e-7, atol=0)
        module.load_state_dict({name: g.inputs[f"{k}.{name}"] for name, _ in module.named_parameters()})
    loss = sum(m(a, b) for m, a, b in zip(modules, s, t))
    named = {
        **{f"s{i}": f for i, f in enumerate(s)},
        **{f"{k}.{name}": p for k, m in enumerate(modules) for name, p in m.named_parameters()},
    }
    check_grads(g, loss, named)


# ---- the objectives: which features, which weights, which trainable extras ----


def outputs(student: torch.nn.Module, teacher: torch.nn.Module) -> tuple[Outputs, Outputs]:
    torch.manual_seed(3)
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        return run_levels(student, x), run_levels(teacher, x)


def test_objectives_compare_repdistillers_features_with_its_weights() -> None:
    """RepDistiller's train_distill: AT/NST/VID on feat[1:-1] (our features 1..3 of a CIFAR ResNet), SP on
    feat[-2] (the last level), PKT/CC on feat[-1] (the pooled embedding); -r 1, -b as in its scripts."""
    student, teacher = net("resnet8"), net("resnet14")
    s, t = outputs(student, teacher)
    labels = torch.arange(6) % 10
    es, et = student.head.embed(s.feats[-1]), teacher.head.embed(t.feats[-1])
    expected = {
        "at": 1000 * sum(at_loss(s.feats[i], t.feats[i]) for i in (1, 2, 3)),
        "nst": 50 * sum(nst_loss(s.feats[i], t.feats[i]) for i in (1, 2, 3)),
        "sp": 3000 * sp_loss(s.feats[3], t.feats[3]),
        "pkt": 30000 * pkt_loss(es, et),
    }
    for name, value in expected.items():
        objective = method(name).make_objective(student, teacher)
        losses = objective.loss_terms(s, t, labels)
        assert set(losses) == {"ce", name}
        assert losses["ce"].item() == pytest.approx(torch.nn.functional.cross_entropy(s.logits, labels).item())
        assert losses[name].item() == pytest.approx(value.item(), rel=1e-6)
    cc = method("cc").make_objective(student, teacher)
    assert (cc.embed_s.in_features, cc.embed_s.out_features, cc.embed_t.in_features) == (64, 128, 64)
    assert cc.loss_terms(s, t, labels)["cc"].item() == pytest.approx(
        0.02 * cc_loss(cc.embed_s(es), cc.embed_t(et)).item(), rel=1e-6
    )
    vid = method("vid").make_objective(student, teacher)
    assert [
        (m.regressor[0].in_channels, m.regressor[0].out_channels, m.regressor[4].out_channels) for m in vid.regressors
    ] == [(16, 16, 16), (32, 32, 32), (64, 64, 64)]  # VIDLoss(s, t, t)
    assert vid.loss_terms(s, t, labels)["vid"].item() == pytest.approx(
        sum(m(s.feats[i], t.feats[i]) for m, i in zip(vid.regressors, (1, 2, 3))).item(), rel=1e-6
    )


def test_kd_weight_adds_hintons_term_and_levels_choose_features() -> None:
    student, teacher = net("resnet8"), net("resnet14")
    s, t = outputs(student, teacher)
    labels = torch.arange(6) % 10
    at_method = method("at", kd_weight=0.9, temperature=2.0, ce_weight=0.1, levels="2,3")
    objective = at_method.make_objective(student, teacher)
    losses = objective.loss_terms(s, t, labels)
    assert losses["kd"].item() == pytest.approx(0.9 * kd_loss(s.logits, t.logits, 2.0).item(), rel=1e-6)
    assert losses["at"].item() == pytest.approx(
        1000 * (at_loss(s.feats[2], t.feats[2]) + at_loss(s.feats[3], t.feats[3])).item(), rel=1e-6
    )
    assert objective.info["pairs"] == ["layer2 32x16x16 <- layer2 32x16x16", "layer3 64x8x8 <- layer3 64x8x8"]


@pytest.mark.parametrize("name", METHODS)
def test_gradients_reach_student_and_extras_teacher_stays_frozen(name: str) -> None:
    objective = method(name).make_objective(net("resnet8"), net("resnet14"))
    objective.train()
    buffers = {k: v.clone() for k, v in objective.teacher.state_dict().items()}
    out = objective(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))
    sum(out.losses.values()).backward()
    assert all(p.grad is None for p in objective.teacher.parameters())
    assert all(p.grad is not None for p in objective.model.parameters())
    extras = [p for m in objective.extra_modules() for p in m.parameters()]
    assert bool(extras) == (name in ("cc", "vid")) and all(p.grad is not None for p in extras)
    assert all(torch.equal(v, buffers[k]) for k, v in objective.teacher.state_dict().items())


# ---- runs and refusals ----


def test_each_distiller_completes_a_tiny_run(tmp_path: Path, cache_dir: Path) -> None:
    outcome = run_tiny(cache_dir, tmp_path, methods=METHODS, teacher="resnet14")
    by_method = {r["method"]["name"]: r for r in outcome.records}
    assert set(by_method) == set(METHODS) and len(list(tmp_path.glob("*.json"))) == len(METHODS)
    for name, record in by_method.items():
        assert record["teacher"]["arch"] == "resnet14" and record["metrics"]["params_deployed"] == 78_042, name
        assert record["metrics"]["top1_selected"] is not None, name
    assert by_method["at"]["info"]["pairs"][0] == "layer1 16x32x32 <- layer1 16x32x32"
    # RepDistiller's extras: two Linear(64, 128) embeddings; VIDLoss(c, c, c) = 3 c^2 weights + c variances
    assert by_method["cc"]["metrics"]["params_extra"] == 2 * (64 * 128 + 128)
    assert by_method["vid"]["metrics"]["params_extra"] == sum(3 * c * c + c for c in (16, 32, 64))
    assert all(by_method[m]["metrics"]["params_extra"] == 0 for m in ("at", "sp", "pkt", "nst"))


def test_level_pairs_refuse_unequal_level_counts_and_bad_indices() -> None:
    student, teacher = net("resnet8"), net("vgg8")  # 3 levels, 4 levels
    with pytest.raises(
        UsageError,
        match=r"at: student resnet8 has 3 levels \(layer1 16x32x32, layer2 32x16x16, "
        r"layer3 64x8x8\) and teacher vgg8 has 4 \(block1 128x16x16, .*"
        r"--opt at.levels=1,2,3 ",
    ):
        method("at").make_objective(student, teacher)
    assert level_pairs(student, teacher, "at", "1,2,3") == [1, 2, 3]  # what RepDistiller's zip pairs
    with pytest.raises(UsageError, match="resnet8 has features 0..3 .*nst.levels asks for 4"):
        method("nst", levels="1,4").make_objective(student, teacher)
    with pytest.raises(UsageError, match="expected 'all' or comma-separated"):
        method("vid", levels="last").make_objective(student, teacher)
    with pytest.raises(UsageError, match="init_pred_var must exceed"):
        method("vid", init_pred_var=1e-6).make_objective(net("resnet8"), net("resnet14"))


@pytest.mark.parametrize("name", ["at", "nst", "vid"])
def test_unbridgeable_pair_is_one_line_exit_2_before_training(capsys, tmp_path: Path, name: str) -> None:
    code = main(
        [
            "run",
            "--dataset",
            "cifar10-mini",
            "--recipe",
            "smoke",
            "--methods",
            name,
            "--arch",
            "resnet8",
            "--teacher",
            "vgg8",
            "--cache-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"bench: error: {name}: student resnet8 has 3 levels") and "vgg8 has 4" in err
    assert not (tmp_path / "artifacts").exists()  # nothing trained, not even the teacher
