"""Shared machinery of knowledge-distillation methods (mdistiller's distiller base class is the model).

A :class:`DistillObjective` owns the student (the deployed model), a frozen teacher kept in eval mode, and
any extra trainable modules (regressors, translators). Its forward computes both networks' features through
the stage interface, the student's cross-entropy, and the method's own terms (``distill``). Feature shapes
come from ``stage_info``, never from per-pair tables.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from harness.train.engine import StepOutput
from harness.core.errors import UsageError
from harness.methods.contract import Method, MethodResult, Objective, Option
from harness.models.staged import StagedClassifier, require_staged

if TYPE_CHECKING:
    from harness.train.context import RunContext
    from harness.core.recipes import Recipe


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's KD term: T^2 * KL(softmax(t/T) || softmax(s/T)), the batch mean of the per-sample KL."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * temperature**2


@dataclass
class Outputs:
    """A network's features (``forward_stages``: stem, then every stage) and logits for one batch."""

    feats: list[torch.Tensor]
    logits: torch.Tensor


def run_staged(model: StagedClassifier, images: torch.Tensor) -> Outputs:
    feats = model.forward_stages(images)
    return Outputs(feats, model.head(feats[-1]))


class DistillObjective(Objective, ABC):
    """Student + frozen teacher. Subclasses implement :meth:`distill` and may set ``ce_weight``."""

    ce_weight: float = 1.0

    def __init__(self, student: StagedClassifier, teacher: StagedClassifier) -> None:
        super().__init__(student)
        self.teacher = self.freeze(teacher)

    @abstractmethod
    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The method's named loss terms (already weighted) from both networks' outputs."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        s = run_staged(self.model, images)
        with torch.no_grad():
            t = run_staged(self.teacher, images)
        losses = {"ce": self.ce_weight * F.cross_entropy(s.logits, labels)} if self.ce_weight else {}
        losses.update(self.distill(s, t, labels))
        return StepOutput(losses=losses, logits=s.logits)


class DistillMethod(Method, ABC):
    """A method trained with a teacher (``--teacher ARCH``, trained once as that architecture's baseline).

    Subclasses implement ``make_objective(student, teacher)``; it must raise UsageError for a pair it
    cannot bridge, which :meth:`check` calls on untrained networks before any training starts.
    """

    uses_teacher: ClassVar[bool] = True
    options: ClassVar[dict[str, Option]] = {}

    @abstractmethod
    def make_objective(self, student: StagedClassifier, teacher: StagedClassifier) -> Objective:
        """The training objective for this pair; raise UsageError when the pair cannot be bridged."""

    def check(self, ctx: "RunContext") -> None:
        super().check(ctx)
        student = require_staged(ctx.build_arch(), self.name)
        teacher = require_staged(ctx.build_arch(ctx.s.teacher_arch), self.name + " (teacher)")
        self.make_objective(student, teacher)

    def teacher_model(self, ctx: "RunContext") -> StagedClassifier:
        stage = ctx.teacher()
        assert stage.model is not None
        self._teacher_key = stage.digest or stage.key
        return require_staged(stage.model, self.name + " (teacher)")

    def train_config(self, ctx: "RunContext") -> dict[str, Any]:
        return {**self.config(), "teacher": getattr(self, "_teacher_key", None)}

    def build_objective(self, ctx: "RunContext", model: nn.Module) -> Objective:
        teacher = self.teacher_model(ctx)
        return self.make_objective(require_staged(model, self.name), teacher)

    def run(self, ctx: "RunContext") -> MethodResult:
        result = super().run(ctx)
        result.info["teacher_weights"] = self._teacher_key
        return result


def feature_shape(model: StagedClassifier, index: int, what: str) -> tuple[int, int]:
    """(channels, spatial size) of feature ``index`` of ``forward_stages``; a clear error when missing."""
    if not -len(model.stage_info) <= index < len(model.stage_info):
        raise UsageError(f"{model.arch_name} has {len(model.stage_info)} features; {what} asks for index {index}")
    info = model.stage_info[index]
    return info.channels, info.size


class KDObjective(DistillObjective):
    """``ce_weight * CE + kd_weight * T^2 * KL`` (Hinton et al.; CRD benchmark weights 0.1 and 0.9, T = 4)."""

    def __init__(self, student: StagedClassifier, teacher: StagedClassifier, *, temperature: float = 4.0,
                 ce_weight: float = 0.1, kd_weight: float = 0.9) -> None:
        super().__init__(student, teacher)
        self.temperature, self.ce_weight, self.kd_weight = temperature, ce_weight, kd_weight

    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"kd": self.kd_weight * kd_loss(s.logits, t.logits, self.temperature)}


def prestage_epochs(recipe: "Recipe", requested: int, stage: str = "ft_paraphraser") -> int:
    """Epochs of a distillation pre-stage: ``requested`` if set, else the recipe's budget for ``stage``, else
    30 epochs at the CRD budget of 240 (RepDistiller's init_epochs), scaled to the run's budget."""
    return requested if requested > 0 else recipe.stage_budget(stage, 30 / 240)
