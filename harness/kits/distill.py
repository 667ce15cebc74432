"""Kit for knowledge-distillation methods (mdistiller's distiller base class is the model).

A :class:`DistillObjective` owns the student (the deployed model), a frozen teacher kept in eval mode, and
any extra trainable modules (regressors, translators). Its forward computes both networks' features through
the level interface, the student's cross-entropy, and the method's own terms (``distill``). Feature shapes
come from ``level_info``, never from per-pair tables. A :class:`DistillMethod` gives
``make_objective(student, teacher)``; its plan is one ``train`` stage that needs the run's teacher stage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.nn import functional as F

from harness.core.errors import UsageError
from harness.core.recipes import Recipe
from harness.methods.contract import Method, Option, Plan, RunInfo
from harness.models.levels import LevelClassifier, require_levels
from harness.train.stage import StageContext
from harness.train.objective import Objective, StepOutput
from harness.train.stage import Stage


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's KD term: T^2 * KL(softmax(t/T) || softmax(s/T)), the batch mean of the per-sample KL."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * temperature**2


@dataclass
class Outputs:
    """A network's features (``forward_levels``: stem, then every level) and logits for one batch."""

    feats: list[torch.Tensor]
    logits: torch.Tensor


def as_fp32(out: Outputs) -> Outputs:
    """The same outputs in fp32 (a no-op for fp32 tensors; gradients flow through the cast)."""
    return Outputs([f.float() for f in out.feats], out.logits.float())


def run_levels(model: LevelClassifier, images: torch.Tensor) -> Outputs:
    feats = model.forward_levels(images)
    return Outputs(feats, model.head(feats[-1]))


class DistillObjective(Objective, ABC):
    """Student + frozen teacher. Subclasses implement :meth:`distill` and may set ``ce_weight``."""

    ce_weight: float = 1.0

    def __init__(self, student: LevelClassifier, teacher: LevelClassifier) -> None:
        super().__init__(student)
        self.teacher = self.freeze(teacher)

    @abstractmethod
    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The method's named loss terms (already weighted) from both networks' outputs."""

    def loss_terms(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy and :meth:`distill`, always in fp32: autocast is disabled and both networks' outputs
        cast up, so relational products (RKD's Gram matrix and angles, FT's and FitNet's bridge modules)
        never run in bf16/fp16 under mixed precision (issue 11: RKD's distance loss was off by 7%)."""
        with torch.autocast(s.logits.device.type, enabled=False):
            s, t = as_fp32(s), as_fp32(t)
            losses = {"ce": self.ce_weight * self.ce(s.logits, labels)} if self.ce_weight else {}
            losses.update(self.distill(s, t, labels))
        return losses

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        s = run_levels(self.model, images)
        with torch.no_grad():
            t = run_levels(self.teacher, images)
        return StepOutput(losses=self.loss_terms(s, t, labels), logits=s.logits)


class KDObjective(DistillObjective):
    """``ce_weight * CE + kd_weight * T^2 * KL`` (Hinton et al.; CRD benchmark weights 0.1 and 0.9, T = 4)."""

    def __init__(self, student: LevelClassifier, teacher: LevelClassifier, *, temperature: float = 4.0,
                 ce_weight: float = 0.1, kd_weight: float = 0.9) -> None:
        super().__init__(student, teacher)
        self.temperature, self.ce_weight, self.kd_weight = temperature, ce_weight, kd_weight

    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"kd": self.kd_weight * kd_loss(s.logits, t.logits, self.temperature)}


class DistillMethod(Method, ABC):
    """A method trained against the run's teacher (``--teacher ARCH``: that architecture's baseline stage, or
    ``--teacher-checkpoint``). Subclasses implement ``make_objective(student, teacher)``, which must raise
    UsageError for a pair it cannot bridge (the harness builds every plan's objectives on untrained
    networks before any training, so such a pair is refused up front)."""

    uses_teacher: ClassVar[bool] = True
    options: ClassVar[dict[str, Option]] = {}

    @abstractmethod
    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        """The training objective for this pair; raise UsageError when the pair cannot be bridged."""

    def plan(self, run: RunInfo) -> Plan:
        return Plan(Stage("train", self.objective, config=self.config(), needs={"teacher": run.teacher(self.name)}))

    def student_and_teacher(self, ctx: StageContext) -> tuple[LevelClassifier, LevelClassifier]:
        return (require_levels(ctx.build_arch(), self.name),
                require_levels(ctx.model_of("teacher"), self.name + " (teacher)"))

    def objective(self, ctx: StageContext) -> Objective:
        return self.make_objective(*self.student_and_teacher(ctx))


def feature_shape(model: LevelClassifier, index: int, what: str) -> tuple[int, int]:
    """(channels, spatial size) of feature ``index`` of ``forward_levels``; a clear error when missing."""
    if not -len(model.level_info) <= index < len(model.level_info):
        raise UsageError(f"{model.arch_name} has {len(model.level_info)} features; {what} asks for index {index}")
    info = model.level_info[index]
    return info.channels, info.size


def prestage_recipe(recipe: Recipe, requested: int, ratio: float = 30 / 240, **overrides: object) -> Recipe:
    """The recipe of a distillation pre-stage (FitNet hints, FT paraphraser): constant learning rate for
    ``requested`` epochs, or ``ratio`` of the run's budget (default: 30 epochs at the CRD budget of 240,
    RepDistiller's ``init_epochs``)."""
    epochs = requested if requested > 0 else recipe.scaled(ratio)
    return recipe.with_overrides(epochs=epochs, schedule="constant", milestones=(), **overrides)
