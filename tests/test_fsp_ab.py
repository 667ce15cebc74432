"""FSP and AB: losses (and AB's connector gradients) against RepDistiller's (golden fixtures), the pre-activation
features, the init stage of the plan, refusals before training, and a tiny real run of both."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from conftest import run_tiny
from golden import load
from harness.core.errors import UsageError
from harness.core.recipes import Recipe
from harness.kits.distill import preact_levels
from harness.methods.contract import RunInfo
from harness.methods.shared import baseline_stage
from harness.models.levels import ArchSpec
from harness.plugins.manager import load_plugins
from plugins.methods.ab import ab_losses, connector
from plugins.methods.fsp import fsp_losses

PLUGINS = load_plugins(entry_points=False, warn=False)


def net(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return PLUGINS.archs.resolve(name).obj(ArchSpec(name, 10))


def test_fsp_losses_and_gradients_equal_repdistillers() -> None:
    g = load("fsp")
    n = len([k for k in g.inputs if k.startswith("s")])
    s = [g.inputs[f"s{i}"].clone().requires_grad_(True) for i in range(n)]
    losses = fsp_losses(s, [g.inputs[f"t{i}"] for i in range(n)])
    for i, loss in enumerate(losses):
        torch.testing.assert_close(loss, g.expected[f"loss{i}"])
    sum(losses).backward()
    for i in range(n):
        torch.testing.assert_close(s[i].grad, g.expected[f"grad.s{i}"])


def test_ab_losses_and_connector_gradients_equal_repdistillers() -> None:
    g = load("ab")
    n = len([k for k in g.inputs if k.startswith("s")])
    s = [g.inputs[f"s{i}"].clone().requires_grad_(True) for i in range(n)]
    t = [g.inputs[f"t{i}"] for i in range(n)]
    connectors = torch.nn.ModuleList(connector(a.shape[1], a.shape[2], b.shape[1], b.shape[2]) for a, b in zip(s, t))
    params = dict(connectors.named_parameters())
    assert {f"connectors.connectors.{k}" for k in params} == {k for k in g.inputs if k.startswith("connectors.")}
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(g.inputs[f"connectors.connectors.{name}"])
    losses = ab_losses([c(f) for c, f in zip(connectors.train(), s)], t, g.params["margin"])
    for i, loss in enumerate(losses):
        torch.testing.assert_close(loss, g.expected[f"loss{i}"])
    sum(losses).backward()
    for i in range(n):
        torch.testing.assert_close(s[i].grad, g.expected[f"grad.s{i}"])
    for name, p in params.items():
        torch.testing.assert_close(p.grad, g.expected[f"grad.connectors.connectors.{name}"])


@pytest.mark.parametrize("arch", ["resnet8", "vgg8"])  # F.relu in a residual block; nn.ReLU(inplace=True)
def test_preact_levels_are_what_the_final_relu_received(arch: str) -> None:
    model = net(arch).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        pre, post = preact_levels(model, x), model.forward_levels(x)[1:]
    assert len(pre) == len(post) == model.num_levels
    for p, o in zip(pre, post):
        assert torch.equal(F.relu(p), o) and bool((p < 0).any())  # before the ReLU: negative values survive


def test_init_stage_plan_follows_repdistiller() -> None:
    info = RunInfo(arch="resnet8", recipe=Recipe("r", 240, 64, 0.05, 5e-4), teacher_stage=baseline_stage("resnet14"))
    for name in ("fsp", "ab"):
        plan = PLUGINS.methods.resolve(name).obj(name).plan(info)
        init = plan.deploy.needs["init"]
        assert set(plan.deploy.needs) == {"init"} and set(init.needs) == {"teacher"}
        assert (init.recipe.epochs, init.recipe.lr, init.recipe.schedule) == (30, 0.05, "constant")
        assert (init.recipe.momentum, init.recipe.weight_decay) == (0.9, 5e-4)


def test_init_stage_trains_the_feature_layers_and_connectors_not_the_head() -> None:
    objective = PLUGINS.methods.resolve("ab").obj("ab").make_objective(net("resnet8"), net("resnet32x4"))
    init = (
        PLUGINS.methods.resolve("ab")
        .obj("ab")
        .plan(
            RunInfo(arch="resnet8", recipe=Recipe("r", 240, 64, 0.05, 5e-4), teacher_stage=baseline_stage("resnet32x4"))
        )
        .deploy.needs["init"]
    )
    trained = {id(p) for p in init.params(objective)}
    assert not any(id(p) in trained for p in objective.model.head.parameters())
    assert all(id(p) in trained for p in [*objective.model.levels.parameters(), *objective.connectors.parameters()])
    assert not any(id(p) in trained for p in objective.teacher.parameters())


def test_pairs_that_cannot_fit_are_refused_before_training(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(UsageError, match=r"fsp \(init stage\): resnet8 has feature channels \[16, 16, 32, 64\]"):
        run_tiny(cache_dir, tmp_path, methods=["fsp"], teacher="resnet8x4")
    with pytest.raises(UsageError, match=r"ab \(init stage\): resnet8 has 3 levels and vgg8 4"):
        run_tiny(cache_dir, tmp_path, methods=["ab"], teacher="vgg8")
    assert not list(tmp_path.glob("*.json"))


def test_tiny_runs_train_the_init_stage_once_then_cross_entropy(tmp_path: Path, cache_dir: Path) -> None:
    outcome = run_tiny(cache_dir, tmp_path / "a", methods=["fsp", "ab"], teacher="resnet14")
    fsp, ab = outcome.records
    for rec, loss in ((fsp, "fsp"), (ab, "ab")):
        assert rec["stages"]["init"]["epochs"] == 1 and rec["info"]["init_epochs"] == 1
        assert rec["stages"]["init"]["curves"][-1][f"test_{loss}"] > 0
        assert set(k for k in rec["curves"][-1] if k.startswith("train_") and k.endswith(("ce", loss))) == {"train_ce"}
        assert rec["teacher"]["arch"] == "resnet14"
    assert fsp["metrics"]["params_extra"] == 0  # resnet8 and resnet14 share widths: no connector for ab either
    again = run_tiny(cache_dir, tmp_path / "b", methods=["ab"], teacher="resnet14")
    assert again.records[0]["stages"]["init"]["origin"] == "cache"
    assert again.records[0]["stages"]["init"]["artifact"] == ab["stages"]["init"]["artifact"]
