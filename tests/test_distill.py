"""Knowledge distillation: losses against hand-computed values, regressor shapes, gradient flow, teachers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from conftest import run_tiny
from harness.kits.distill import KDObjective, Outputs, kd_loss, run_levels
from harness.core.errors import UsageError
from harness.core.recipes import Recipe
from harness.methods.contract import RunInfo
from harness.methods.shared import baseline_stage
from harness.models.levels import ArchSpec
from harness.plugins.manager import load_plugins
from plugins.methods.fitnet import ConvRegressor, FitNetObjective
from plugins.methods.ft import FTObjective, Paraphraser, factor_loss
from plugins.methods.rkd import RKDObjective, angle_loss, angles, distance_loss

PLUGINS = load_plugins(entry_points=False, warn=False)


def net(name: str, classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(0)
    return PLUGINS.archs.resolve(name).obj(ArchSpec(name, classes))


def test_kd_loss_with_temperature_by_hand() -> None:
    # teacher softmax at T=2 is (0.75, 0.25), student's (0.5, 0.5)
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[2 * math.log(3), 0.0]])
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_loss(s, t, 2.0).item() == pytest.approx(4 * kl, rel=1e-6)
    # batch mean of per-sample KL, not a mean over classes
    assert kd_loss(s.repeat(3, 1), t.repeat(3, 1), 2.0).item() == pytest.approx(4 * kl, rel=1e-6)
    assert kd_loss(t, t, 4.0).item() == pytest.approx(0.0, abs=1e-5)


def test_rkd_distance_by_hand() -> None:
    s = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])  # distances 3, 4, 5 -> / mean 4
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # distances 1, 1, sqrt 2 -> / mean (2 + sqrt 2) / 3
    mt = (2 + math.sqrt(2)) / 3
    diffs = [3 / 4 - 1 / mt, 4 / 4 - 1 / mt, 5 / 4 - math.sqrt(2) / mt]
    expected = 2 * sum(0.5 * d * d for d in diffs) / 9  # smooth-L1 (all |d| < 1) over the 3x3 matrix
    assert distance_loss(s, t).item() == pytest.approx(expected, rel=1e-5)
    assert distance_loss(2 * t, t).item() == pytest.approx(0.0, abs=1e-6)  # scale invariant


def test_rkd_angles_by_hand() -> None:
    e = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    a = angles(e).view(3, 3, 3)  # a[j, i, k]: cosine at vertex j between i and k
    assert a[0, 1, 2].item() == pytest.approx(0.0, abs=1e-6)  # right angle at the origin
    assert a[1, 0, 2].item() == pytest.approx(9 / 15, rel=1e-5)  # (-3, 0).(-3, 4) / (3 * 5)
    assert a[2, 0, 1].item() == pytest.approx(16 / 20, rel=1e-5)  # (0, -4).(3, -4) / (4 * 5)
    assert angle_loss(e * 7, e).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "s_size, t_size, kind",
    [(32, 16, torch.nn.Conv2d), (16, 16, torch.nn.Conv2d), (8, 16, torch.nn.ConvTranspose2d), (8, 4, torch.nn.Conv2d)],
)
def test_fitnet_regressor_shapes(s_size: int, t_size: int, kind: type) -> None:
    reg = ConvRegressor(16, s_size, 32, t_size)
    assert type(reg.conv) is kind
    assert reg(torch.randn(2, 16, s_size, s_size)).shape == (2, 32, t_size, t_size)


def test_fitnet_refuses_unbridgeable_sizes() -> None:
    with pytest.raises(UsageError, match="regressor bridges"):
        ConvRegressor(16, 4, 32, 16)


def test_ft_factor_normalisation() -> None:
    a = torch.randn(2, 8, 4, 4)
    assert factor_loss(a, 5 * a, "flattened").item() == pytest.approx(0.0, abs=1e-6)  # scale is normalised away
    assert factor_loss(a, 5 * a, "channel-mean").item() == pytest.approx(0.0, abs=1e-6)
    e1 = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    e2 = torch.tensor([0.0, 3.0]).view(1, 2, 1, 1)
    assert factor_loss(e1, e2, "flattened").item() == pytest.approx(1.0)  # mean(|1 - 0|, |0 - 1|)
    assert factor_loss(torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4), "flattened").ndim == 0  # pooled to 4x4


def objectives() -> dict[str, torch.nn.Module]:
    make = {
        "kd": lambda s, t: KDObjective(s, t),
        "rkd": lambda s, t: RKDObjective(s, t, 25.0, 50.0),
        "fitnet": lambda s, t: FitNetObjective(s, t, 2, 100.0),
        "ft": lambda s, t: FTObjective(s, t, Paraphraser(t.level_info[-1].channels), 0.5, 500.0, "flattened", False),
    }
    return {name: f(net("resnet8"), net("resnet14")) for name, f in make.items()}


@pytest.mark.parametrize("name", ["kd", "rkd", "fitnet", "ft"])
def test_gradients_reach_only_student_and_extras_teacher_stays_frozen(name: str) -> None:
    objective = objectives()[name]
    objective.train()
    teacher_buffers = {k: v.clone() for k, v in objective.teacher.state_dict().items()}
    assert not objective.teacher.training
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    out = objective(x, y)
    sum(out.losses.values()).backward()
    assert all(p.grad is None for p in objective.teacher.parameters())
    assert all(p.grad is not None for p in objective.model.parameters() if p.requires_grad)
    for module in objective.extra_modules():
        if name == "ft" and module is objective.paraphraser:
            assert all(p.grad is None for p in module.parameters())
        else:
            assert all(p.grad is not None for p in module.parameters())
    for k, v in objective.teacher.state_dict().items():  # BatchNorm running statistics unchanged
        assert torch.equal(v, teacher_buffers[k]), k
    assert not objective.teacher.training


def test_distillation_run_trains_teacher_once(tmp_path: Path, cache_dir: Path) -> None:
    outcome = run_tiny(cache_dir, tmp_path, methods=["baseline", "kd", "rkd", "fitnet", "ft"], teacher="resnet14")
    by_method = {r["method"]["name"]: r for r in outcome.records}
    origins = {m: r["stages"]["baseline[resnet14]"]["origin"] for m, r in by_method.items() if r["teacher"]}
    # the first distillation method trains the teacher (or loads it, when an earlier test cached it); the
    # others share that one resolution
    assert origins.pop("kd") in ("trained", "cache") and set(origins.values()) == {"shared"}
    keys = {r["teacher"]["artifact"] for r in outcome.records if r["teacher"]}
    assert len(keys) == 1 and by_method["baseline"]["teacher"] is None
    assert all(r["teacher"]["test_acc"] is not None for r in outcome.records if r["teacher"])
    assert by_method["fitnet"]["metrics"]["params_extra"] == 1_120  # 1x1 conv 32->32 + bias + BN
    assert by_method["ft"]["metrics"]["params_extra"] > 0 and by_method["ft"]["info"]["factor_form"] == "flattened"
    assert all(r["metrics"]["params_deployed"] == 78_042 for r in outcome.records)


def test_teacher_checkpoint_from_record_and_mismatch(tmp_path: Path, cache_dir: Path) -> None:
    teacher_run = run_tiny(cache_dir, tmp_path / "t", arch="resnet14")
    (record_path,) = (tmp_path / "t").glob("*.json")
    outcome = run_tiny(cache_dir, tmp_path / "s", methods=["kd"], teacher_checkpoint=record_path)
    (rec,) = outcome.records
    assert rec["teacher"]["arch"] == "resnet14" and rec["teacher"]["checkpoint"]
    assert rec["teacher"]["test_acc"] == pytest.approx(teacher_run.records[0]["metrics"]["top1_selected"])
    plain = tmp_path / "plain.pt"
    torch.save(net("resnet20").state_dict(), plain)
    with pytest.raises(UsageError, match="does not fit resnet14"):
        run_tiny(cache_dir, tmp_path / "x", methods=["kd"], teacher="resnet14", teacher_checkpoint=plain)
    with pytest.raises(UsageError, match="name its architecture with --teacher"):
        run_tiny(cache_dir, tmp_path / "x", methods=["kd"], teacher_checkpoint=plain)


def test_kd_without_teacher_and_bad_pairs_are_refused(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(UsageError, match="needs a teacher"):
        run_tiny(cache_dir, tmp_path, methods=["kd"])
    with pytest.raises(UsageError, match="resnet8 has 4 features; fitnet.hint_layer asks for index 4"):
        run_tiny(cache_dir, tmp_path, methods=["fitnet"], teacher="vgg8", options=["fitnet.hint_layer=4"])
    with pytest.raises(UsageError, match="regressor bridges"):  # student map 8x8, teacher's 32x32
        run_tiny(
            cache_dir,
            tmp_path,
            methods=["fitnet"],
            teacher="vgg8",
            options=["fitnet.hint_layer=0"],
            arch="timm:convnext_atto",
        )


def test_ft_defaults_follow_the_authors_cifar_code_and_ft_crd_repdistiller() -> None:
    info = RunInfo(arch="resnet8", recipe=Recipe("r", 240, 64, 0.05, 5e-4), teacher_stage=baseline_stage("resnet14"))
    ft, crd = (PLUGINS.methods.resolve(name).obj(name) for name in ("ft", "ft-crd"))
    assert (ft.opts["beta"], ft.opts["translator_bn"], ft.opts["paraphraser_loss"]) == (500.0, False, "l1")
    assert (crd.opts["beta"], crd.opts["translator_bn"], crd.opts["paraphraser_loss"]) == (200.0, True, "mse")
    p_ft, p_crd = (m.plan(info).deploy.needs["paraphraser"] for m in (ft, crd))
    assert (p_ft.recipe.epochs, p_ft.recipe.lr, p_ft.recipe.schedule) == (9, 0.1, "constant")  # 240 * 6/164
    assert (p_crd.recipe.epochs, p_crd.recipe.lr) == (30, 0.01)
    assert p_ft.config == {"k": 0.5, "loss": "l1"} and p_crd.config == {"k": 0.5}  # ft-crd's key unchanged
    objective = ft.make_objective(net("resnet8"), net("resnet14"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in objective.translator.modules())
    crd_objective = crd.make_objective(net("resnet8"), net("resnet14"))
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in crd_objective.translator.modules())
    teacher = net("resnet14")
    para = ft.paraphraser_objective(type("Ctx", (), {"model_of": lambda self, _: teacher})())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feat = teacher.forward_features(x)  # the frozen teacher, in eval mode
    assert para(x, torch.zeros(2)).losses["reconstruction"].item() == pytest.approx(
        F.l1_loss(para.model(feat)[1], feat).item(), rel=1e-5
    )


def test_two_stage_fitnet_and_shared_paraphraser(tmp_path: Path, cache_dir: Path) -> None:
    # ft with ft-crd's paraphraser settings (MSE, lr 0.01 for resnet8) shares its paraphraser
    outcome = run_tiny(
        cache_dir,
        tmp_path,
        methods=["fitnet", "ft", "ft-crd"],
        teacher="resnet14",
        options=["fitnet.stages=2", "ft.paraphraser_loss=mse", "ft.paraphraser_lr=0.01"],
    )
    fitnet, ft, ft_crd = outcome.records
    assert set(fitnet["stages"]) >= {"hint", "train"} and fitnet["info"]["hint_epochs"] == 1
    assert fitnet["stages"]["hint"]["epochs"] == 1 and fitnet["stages"]["hint"]["reused"] is False
    assert ft["info"]["beta"] == 500.0 and ft["info"]["translator_bn"] is False
    # same teacher, k, loss, epochs and lr: one paraphraser artifact, reused by the second method
    assert ft["stages"]["paraphraser"]["artifact"] == ft_crd["stages"]["paraphraser"]["artifact"]
    assert ft_crd["stages"]["paraphraser"]["reused"] is True
    assert ft_crd["info"]["factor_form"] == "channel-mean" and ft_crd["info"]["beta"] == 200.0


@pytest.mark.parametrize("name", ["kd", "rkd", "fitnet", "ft"])
def test_distill_losses_are_fp32_under_autocast(name: str) -> None:
    """Issue 11: under bf16 autocast every loss term equals the fp32 one (RKD's Gram matrix and angle bmm,
    FT's translator, FitNet's regressor would otherwise run in bf16). The outputs are bf16-representable so
    that the two runs see the same numbers; under autocast they come in as bf16, as a network would give them."""
    objective = objectives()[name].eval()
    torch.manual_seed(1)
    s_net, t_net = net("resnet8"), net("resnet14")
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    with torch.no_grad():
        s, t = (run_levels(m, x) for m in (s_net, t_net))
    bf16 = [Outputs([f.bfloat16() for f in o.feats], o.logits.bfloat16()) for o in (s, t)]
    fp32 = [Outputs([f.float() for f in o.feats], o.logits.float()) for o in bf16]
    with torch.no_grad():
        expected = objective.loss_terms(*fp32, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = objective.loss_terms(*bf16, y)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key].dtype == torch.float32, key
        assert got[key].item() == pytest.approx(expected[key].item(), rel=1e-6, abs=1e-7), key
