"""``dkd``: decoupled knowledge distillation (Zhao et al., CVPR 2022) as mdistiller runs it on CIFAR-100.

KD's KL split at the label: TCKD, the KL between the two binary distributions (target class, all others) of
the tempered softmax, and NCKD, the KL between the softmax over the non-target classes alone (the target
logit pushed down by 1000 after dividing by T, as mdistiller does, rather than removed). Both are summed over
the batch, divided by its size and scaled by T^2:

    loss = ce_weight * CE + min(e / warmup, 1) * (alpha * TCKD + beta * NCKD),  e the 1-based epoch

with mdistiller's defaults (``mdistiller/engine/cfg.py``): CE weight 1, alpha 1, beta 8, T = 4, warm-up 20
epochs (of its 240). Its CIFAR-100 configurations (``configs/cifar100/dkd/*.yaml``) set beta per pair:
2 for resnet56 -> resnet20 and resnet110 -> resnet32, 6 for vgg13 -> vgg8 (and for vgg13 -> MobileNetV2,
wrn_40_2 -> wrn_16_2, wrn_40_2 -> wrn_40_1, architectures bench does not have), 8 for the others; with
``pair_beta`` (default) the pair's beta is used where a configuration sets one, otherwise ``beta``.

Deviation, for budgets other than mdistiller's: ``warmup=0`` (default) scales its 20 of 240 epochs to the
stage's budget (``max(1, round(epochs * 20 / 240))``, 20 at 240 epochs), as the other distillers' pre-stages
do; a positive ``warmup`` is taken as given. The current epoch reaches the loss through the engine's
``Objective.start_epoch``; the factor is kept in a buffer so that a compiled forward is not recompiled.

``logit_std=true``: logit standardisation (Sun et al., CVPR 2024) as its authors run DKD with
``--logit-stand``: both terms on Z-scored logits, T = ``ls_temperature`` (2), alpha and beta multiplied by
``ls_weight`` (9); CE and warm-up unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.nn import functional as F

from harness.api import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, LevelClassifier, Objective, Option, UsageError
from harness.kits.distill import (
    LOGIT_STD_OPTIONS,
    DistillMethod,
    DistillObjective,
    Outputs,
    check_logit_std,
    standardize_logits,
)

#: mdistiller's warm-up: 20 epochs at its (the CRD) budget of 240
WARMUP_EPOCHS, WARMUP_BUDGET = 20, 240

#: beta of the (teacher, student) pairs whose mdistiller CIFAR-100 configuration sets one, with that file
PAIR_BETA: dict[tuple[str, str], tuple[float, str]] = {
    ("resnet56", "resnet20"): (2.0, "configs/cifar100/dkd/res56_res20.yaml"),
    ("resnet110", "resnet32"): (2.0, "configs/cifar100/dkd/res110_res32.yaml"),
    ("vgg13", "vgg8"): (6.0, "configs/cifar100/dkd/vgg13_vgg8.yaml"),
}


def dkd_terms(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD), each T^2 * the KL summed over the batch and divided by its size (unweighted)."""
    target = F.one_hot(labels, student_logits.shape[1]).to(student_logits.dtype)
    p_s = F.softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    # binary distributions (target, non-target): both parts summed from the softmax, as mdistiller's cat_mask
    b_s = torch.stack(((p_s * target).sum(1), (p_s * (1 - target)).sum(1)), dim=1)
    b_t = torch.stack(((p_t * target).sum(1), (p_t * (1 - target)).sum(1)), dim=1)
    tckd = F.kl_div(torch.log(b_s), b_t, reduction="sum") / len(labels)
    log_q_s = F.log_softmax(student_logits / temperature - 1000.0 * target, dim=1)
    q_t = F.softmax(teacher_logits / temperature - 1000.0 * target, dim=1)
    nckd = F.kl_div(log_q_s, q_t, reduction="sum") / len(labels)
    return tckd * temperature**2, nckd * temperature**2


def warmup_epochs(requested: int, epochs: int) -> int:
    """The warm-up length: ``requested``, or for 0 mdistiller's 20 of 240 epochs scaled to ``epochs``."""
    return requested if requested > 0 else max(1, round(epochs * WARMUP_EPOCHS / WARMUP_BUDGET))


class DKDObjective(DistillObjective):
    """``ce_weight * CE + ramp * (alpha * TCKD + beta * NCKD)``; ``ramp = min((epoch + 1) / warmup, 1)`` for
    the 0-based epoch the engine announces (:meth:`start_epoch`); before the first announcement, that of the
    first epoch."""

    ramp: torch.Tensor  # a buffer

    def __init__(
        self,
        student: LevelClassifier,
        teacher: LevelClassifier,
        *,
        alpha: float,
        beta: float,
        temperature: float,
        ce_weight: float,
        warmup: int,
        logit_std: bool = False,
    ) -> None:
        super().__init__(student, teacher)
        self.alpha, self.beta, self.temperature, self.ce_weight = alpha, beta, temperature, ce_weight
        self.warmup, self.logit_std = warmup, logit_std
        self.register_buffer("ramp", torch.tensor(1.0 / warmup_epochs(warmup, WARMUP_BUDGET)), persistent=False)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        self.ramp.fill_(min((epoch + 1) / warmup_epochs(self.warmup, epochs), 1.0))

    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        s_logits, t_logits = s.logits, t.logits
        if self.logit_std:
            s_logits, t_logits = standardize_logits(s_logits), standardize_logits(t_logits)
        tckd, nckd = dkd_terms(s_logits, t_logits, labels, self.temperature)
        return {"tckd": self.ramp * (self.alpha * tckd), "nckd": self.ramp * (self.beta * nckd)}


class DKD(DistillMethod):
    options = {
        "ce_weight": Option(1.0, "weight of the cross-entropy with the labels", constraint=NON_NEGATIVE),
        "alpha": Option(1.0, "weight of TCKD (target vs non-target)", constraint=NON_NEGATIVE),
        "beta": Option(
            8.0, "weight of NCKD (among the non-target classes) where pair_beta gives none", constraint=NON_NEGATIVE
        ),
        "pair_beta": Option(
            True,
            "use the beta of mdistiller's CIFAR-100 configuration of this teacher-student "
            "pair where it sets one (2 for resnet56/resnet110 pairs, 6 for vgg13 -> vgg8)",
        ),
        "temperature": Option(4.0, "softmax temperature T", constraint=POSITIVE),
        "warmup": Option(
            0,
            "epochs over which the DKD terms ramp up linearly; 0: mdistiller's 20 of 240, scaled to the budget",
            constraint=NON_NEGATIVE_INT,
        ),
        **LOGIT_STD_OPTIONS,
    }

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        if self.opts["pair_beta"] and self.opts["beta"] != self.options["beta"].default:
            raise UsageError(
                f"{name}: beta={self.opts['beta']} is set while pair_beta=true uses mdistiller's "
                f"per-pair beta where it has one; add --opt {name}.pair_beta=false to use yours"
            )
        check_logit_std(self, {"temperature": "ls_temperature"})

    def pair_beta(self, student: LevelClassifier, teacher: LevelClassifier) -> tuple[float, str]:
        """The NCKD weight for this pair, and where it comes from."""
        if self.opts["pair_beta"] and (teacher.arch_name, student.arch_name) in PAIR_BETA:
            beta, config = PAIR_BETA[(teacher.arch_name, student.arch_name)]
            return beta, f"mdistiller {config}"
        return self.opts["beta"], ("mdistiller default (engine/cfg.py)" if self.opts["pair_beta"] else "option beta")

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        o = self.opts
        beta, source = self.pair_beta(student, teacher)
        scale = o["ls_weight"] if o["logit_std"] else 1.0
        objective = DKDObjective(
            student,
            teacher,
            alpha=o["alpha"] * scale,
            beta=beta * scale,
            temperature=o["ls_temperature"] if o["logit_std"] else o["temperature"],
            ce_weight=o["ce_weight"],
            warmup=o["warmup"],
            logit_std=o["logit_std"],
        )
        objective.info.update(
            alpha=objective.alpha, beta=objective.beta, beta_source=source, temperature=objective.temperature
        )
        return objective
