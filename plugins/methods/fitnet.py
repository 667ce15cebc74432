"""``fitnet``: FitNets hints (Romero et al., 2015) as run in the CRD benchmark.

Hint = feature 2 of the level interface (the 16x16 map of a CIFAR ResNet, RepDistiller's ``hint_layer 2``).
A regressor maps the student's hint to the teacher's shape: a 3x3 stride-2 conv when the student's map is
twice the teacher's, a 4x4 stride-2 transposed conv when it is half, otherwise a conv of kernel
1 + s_H - t_H; then BN + ReLU (RepDistiller's ``ConvReg``). Any other size ratio is refused.

``stages=1`` (default, CRD form): loss = CE + 100 * MSE(regressor(student hint), teacher hint).
``stages=2`` (the original paper): first the student's layers up to the hint and the regressor are trained
on the hint MSE alone (``hint_epochs``; by default 30 epochs at the CRD budget of 240, scaled), then the
whole student with KD (0.1 CE + 0.9 T^2 KL, T = 4). Romero et al. anneal the KD weight; we do not.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from harness.api import (
    COUNT,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    LevelClassifier,
    Objective,
    Option,
    Plan,
    Report,
    RunEnv,
    RunInfo,
    Stage,
    StageContext,
    StepOutput,
    TrainedStage,
    require_levels,
)
from harness.kits.distill import (
    ConvRegressor,
    DistillMethod,
    DistillObjective,
    KDObjective,
    Outputs,
    feature_shape,
    prestage_recipe,
)


def make_regressor(student: LevelClassifier, teacher: LevelClassifier, hint: int) -> ConvRegressor:
    s_c, s_h = feature_shape(student, hint, "fitnet.hint_layer")
    t_c, t_h = feature_shape(teacher, hint, "fitnet.hint_layer")
    return ConvRegressor(s_c, s_h, t_c, t_h)


class FitNetObjective(DistillObjective):
    def __init__(self, student: LevelClassifier, teacher: LevelClassifier, hint: int, weight: float) -> None:
        super().__init__(student, teacher)
        self.hint, self.weight = hint, weight
        self.regressor = make_regressor(student, teacher, hint)

    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"hint": self.weight * F.mse_loss(self.regressor(s.feats[self.hint]), t.feats[self.hint])}


class HintObjective(Objective):
    """Stage 1 of the two-stage form: the student's layers up to the hint learn the teacher's hint."""

    model: LevelClassifier
    teacher: LevelClassifier

    def __init__(self, student: LevelClassifier, teacher: LevelClassifier, hint: int) -> None:
        super().__init__(student)
        self.teacher = self.freeze(teacher)
        self.hint = hint
        self.regressor = make_regressor(student, teacher, hint)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        s_hint = self.model.forward_features(images, upto=self.hint)
        with torch.no_grad():
            t_hint = self.teacher.forward_features(images, upto=self.hint)
        return StepOutput(losses={"hint": F.mse_loss(self.regressor(s_hint), t_hint)})


class FitNet(DistillMethod):
    options = {
        "hint_layer": Option(
            2, "feature index of the hint (0 = stem output, k = after level k)", constraint=NON_NEGATIVE_INT
        ),
        "weight": Option(100.0, "weight of the hint MSE (single-stage form)", constraint=NON_NEGATIVE),
        "stages": Option(
            1, "1: CE + weight * hint (CRD benchmark); 2: hint training, then KD (the paper)", (1, 2), constraint=COUNT
        ),
        "hint_epochs": Option(
            0, "epochs of the hint stage (stages=2); 0 = 30 at a 240-epoch budget, scaled", constraint=NON_NEGATIVE_INT
        ),
        "temperature": Option(4.0, "KD temperature of the second stage (stages=2)", constraint=POSITIVE),
    }

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return FitNetObjective(student, teacher, self.opts["hint_layer"], self.opts["weight"])

    def plan(self, run: RunInfo) -> Plan:
        if self.opts["stages"] == 1:
            return super().plan(run)
        teacher = run.teacher(self.name)
        hint = Stage(
            "hint",
            self.hint_objective,
            config=self.config(),
            needs={"teacher": teacher},
            recipe=prestage_recipe(run.recipe, self.opts["hint_epochs"]),
            evaluate="losses",
            params=hinted_parameters,
        )
        train = Stage("train", self.kd_objective, config=self.config(), needs={"teacher": teacher, "hint": hint})
        return Plan(train, report=hint_report)

    def hint_objective(self, ctx: StageContext) -> Objective:
        return HintObjective(*self.student_and_teacher(ctx), self.opts["hint_layer"])

    def kd_objective(self, ctx: StageContext) -> Objective:
        """Stage 2: KD on the whole student, starting from the hint stage's student."""
        student = copy.deepcopy(require_levels(ctx.inputs["hint"].model, self.name))
        teacher = require_levels(ctx.model_of("teacher"), self.name + " (teacher)")
        return KDObjective(student, teacher, temperature=self.opts["temperature"])


def hinted_parameters(objective: Objective) -> list[nn.Parameter]:
    """What the hint stage trains: the student's layers up to the hint, and the regressor."""
    assert isinstance(objective, HintObjective)
    layers = [objective.model.stem, *objective.model.levels[: objective.hint]]
    return [p for m in layers for p in m.parameters()] + list(objective.regressor.parameters())


def hint_report(deployed: TrainedStage, env: RunEnv) -> Report:
    hint = deployed.inputs["hint"]
    assert isinstance(hint.objective, HintObjective)
    return Report(
        info={**deployed.info, "hint_epochs": len(hint.history)},
        extra_params=sum(p.numel() for p in hint.objective.regressor.parameters()),
    )
