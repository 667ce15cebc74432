"""DKD and logit standardisation: our losses and gradients against the reference code's (golden fixtures from
mdistiller and the logit standardisation authors' code), the warm-up's epoch from the engine, refusals, and a
tiny real run of each."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import run_tiny
from test_faults import Stream
from golden import load
from harness.cli import main
from harness.core.errors import UsageError
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.kits.distill import Outputs, standardize_logits
from harness.models.levels import ArchSpec
from harness.plugins.manager import load_plugins
from harness.train.engine import fit
from harness.train.objective import Objective, StepOutput
from plugins.methods.dkd import DKD
from plugins.methods.kd import KD

PLUGINS = load_plugins(entry_points=False, warn=False)
DKD_PAIRS = {
    "res32x4_res8x4": ("resnet8x4", "resnet32x4"),
    "res56_res20": ("resnet20", "resnet56"),
    "resnet56_resnet20": ("resnet20", "resnet56"),
    "vgg13_vgg8": ("vgg8", "vgg13"),
}


@functools.cache
def net(name: str) -> nn.Module:
    torch.manual_seed(0)
    return PLUGINS.archs.resolve(name).obj(ArchSpec(name, 100))


def losses_and_grad(objective: Objective, inputs: dict[str, torch.Tensor], epoch: int):
    """The objective's terms on the fixture's logits at mdistiller's 1-based ``epoch`` of 240, and the
    gradient of their sum w.r.t. the student logits."""
    objective.start_epoch(epoch - 1, 240)
    student = inputs["student_logits"].clone().requires_grad_(True)
    losses = objective.loss_terms(Outputs([], student), Outputs([], inputs["teacher_logits"]), inputs["labels"].long())
    sum(losses.values()).backward()
    return losses, student.grad


def pair_of(case: str) -> tuple[str, str]:
    return next(pair for key, pair in DKD_PAIRS.items() if key in case)


@pytest.mark.parametrize("case", list(load("dkd").expected))
def test_dkd_equals_mdistiller(case: str) -> None:
    gold = load("dkd")
    params, expected = gold.params[case], gold.expected[case]
    student, teacher = pair_of(case)
    objective = DKD("dkd").make_objective(net(student), net(teacher))
    assert (objective.alpha, objective.beta, objective.temperature, objective.ce_weight) == (
        params["alpha"],
        params["beta"],
        params["temperature"],
        params["ce_weight"],
    )
    losses, grad = losses_and_grad(objective, gold.inputs, params["epoch"])
    torch.testing.assert_close(losses["ce"], expected["loss_ce"])
    torch.testing.assert_close(losses["tckd"] + losses["nckd"], expected["loss_kd"])
    torch.testing.assert_close(grad, expected["grad.student_logits"])


def test_standardize_logits_equals_the_authors_normalize() -> None:
    gold = load("logit_std")
    out = standardize_logits(gold.inputs["normalize_input"])
    torch.testing.assert_close(out, gold.expected["normalize"])
    assert torch.equal(out[1], torch.zeros(100))  # a constant row: eps keeps it finite


@pytest.mark.parametrize("case", [c for c in load("logit_std").expected if c != "normalize"])
def test_logit_std_kd_and_dkd_equal_the_authors_code(case: str) -> None:
    gold = load("logit_std")
    params, expected = gold.params[case], gold.expected[case]
    if case == "kd":
        objective = KD("kd", {"logit_std": True}).make_objective(net("resnet8"), net("resnet14"))
        assert (objective.temperature, objective.kd_weight, objective.ce_weight) == (
            params["temperature"],
            params["kd_weight"],
            params["ce_weight"],
        )
        epoch = 1
    else:
        student, teacher = pair_of(case)
        objective = DKD("dkd", {"logit_std": True}).make_objective(net(student), net(teacher))
        assert (objective.alpha, objective.beta, objective.temperature) == (
            params["alpha"],
            params["beta"],
            params["temperature"],
        )
        epoch = params["epoch"]
    losses, grad = losses_and_grad(objective, gold.inputs, epoch)
    torch.testing.assert_close(losses["ce"], expected["loss_ce"])
    torch.testing.assert_close(sum(v for k, v in losses.items() if k != "ce"), expected["loss_kd"])
    torch.testing.assert_close(grad, expected["grad.student_logits"])


class Ramp(Objective):
    """Records what the engine announces, and trains a scalar."""

    def __init__(self) -> None:
        super().__init__(nn.Linear(1, 1))
        self.seen: list[tuple[int, int]] = []

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.seen.append((epoch, epochs))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        return StepOutput(losses={"ce": self.model.weight.pow(2).sum()})


def test_engine_announces_every_epoch_also_after_a_resume(tmp_path: Path) -> None:
    recipe = Recipe("r", epochs=3, batch_size=2, lr=0.01, weight_decay=0)
    ckpt = tmp_path / "stage.ckpt"
    first = Ramp()
    fit(
        first,
        Stream(2),
        recipe.with_overrides(epochs=2),
        evaluate=dict,
        label="t",
        reporter=Reporter(),
        device=torch.device("cpu"),
        checkpoint=ckpt,
    )
    assert first.seen == [(0, 2), (1, 2)]
    resumed = Ramp()
    fit(
        resumed,
        Stream(2),
        recipe,
        evaluate=dict,
        label="t",
        reporter=Reporter(),
        device=torch.device("cpu"),
        checkpoint=ckpt,
        resume=True,
    )
    assert resumed.seen == [(2, 3)]


@pytest.mark.parametrize(
    "warmup, epochs, ramps",
    [
        (0, 240, [1 / 20, 10 / 20, 1.0, 1.0]),  # mdistiller's 20 epochs at its budget
        (0, 24, [1 / 2, 1.0, 1.0, 1.0]),  # scaled: 2 of 24
        (0, 1, [1.0, 1.0, 1.0, 1.0]),
        (5, 240, [1 / 5, 1.0, 1.0, 1.0]),
    ],
)
def test_dkd_warmup_ramp(warmup: int, epochs: int, ramps: list[float]) -> None:
    objective = DKD("dkd", {"warmup": warmup}).make_objective(net("resnet20"), net("resnet56"))
    got = []
    for epoch in (0, 9, 19, 239):
        objective.start_epoch(epoch, epochs)
        got.append(objective.ramp.item())
    assert got == pytest.approx(ramps)
    assert "ramp" not in objective.state_dict()  # not part of the artifact


def test_dkd_pair_beta() -> None:
    def beta(student: str, teacher: str, **opts: object) -> tuple[float, str]:
        objective = DKD("dkd", opts).make_objective(net(student), net(teacher))
        return objective.beta, objective.info["beta_source"]

    assert beta("resnet20", "resnet56") == (2.0, "mdistiller configs/cifar100/dkd/res56_res20.yaml")
    assert beta("vgg8", "vgg13")[0] == 6.0 and beta("resnet8x4", "resnet32x4")[0] == 8.0
    assert beta("resnet20", "resnet56", pair_beta=False, beta=4.0) == (4.0, "option beta")
    assert beta("resnet20", "resnet56", logit_std=True)[0] == 18.0  # x ls_weight 9, as the authors' code


@pytest.mark.parametrize(
    "method, opts, message",
    [
        (DKD, {"beta": 4.0}, "beta=4.0 is set while pair_beta=true"),
        (
            DKD,
            {"logit_std": True, "temperature": 3.0},
            "temperature=3.0 is not used with logit_std=true.*dkd.ls_temperature",
        ),
        (KD, {"logit_std": True, "kd_weight": 1.0}, "kd_weight=1.0 is not used with logit_std=true.*kd.ls_weight"),
        (KD, {"ls_temperature": 3.0}, "ls_temperature only applies with logit_std=true"),
    ],
)
def test_settings_that_would_be_ignored_are_refused(method: type, opts: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        method(method.__name__.lower(), opts)


def test_refusal_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "run",
                "--methods",
                "kd",
                "--arch",
                "resnet8",
                "--teacher",
                "resnet14",
                "--opt",
                "kd.logit_std=true",
                "--opt",
                "kd.temperature=3",
                "--dry-run",
            ]
        )
        == 2
    )
    assert "kd: temperature=3.0 is not used with logit_std=true" in capsys.readouterr().err


def test_tiny_runs_of_dkd_and_kd_with_logit_std(tmp_path: Path, cache_dir: Path) -> None:
    outcome = run_tiny(
        cache_dir,
        tmp_path,
        methods=["dkd", "kd"],
        teacher="resnet14",
        options=["dkd.logit_std=true", "kd.logit_std=true"],
    )
    by_method = {r["method"]["name"]: r for r in outcome.records}
    assert by_method["dkd"]["method"]["options"]["logit_std"] is True
    assert by_method["dkd"]["info"]["beta"] == 72.0 and by_method["kd"]["info"]["temperature"] == 2.0
    (row,) = by_method["dkd"]["curves"]  # one epoch: both DKD terms trained, at the full ramp (1 epoch budget)
    assert row["train_tckd"] > 0 and row["train_nckd"] > 0 and row["train_ce"] > 0
    assert by_method["kd"]["curves"][0]["train_kd"] > 0
    assert all(r["metrics"]["params_deployed"] == 78_042 for r in outcome.records)
