"""``ft`` and ``ft-crd``: factor transfer (Kim et al., 2018) on the last conv level.

A paraphraser (3 convs encoder, 3 transposed convs decoder, LeakyReLU 0.1, no BN, factor channels
k * C_t with k = 0.5) is first trained to reconstruct the teacher's last-level features (a pre-stage at a
constant lr), then frozen. The paraphraser is a stage of its own: ``ft`` and ``ft-crd`` share it only when
its settings (teacher, ``k``, reconstruction loss, epochs, lr) are identical, which with the defaults they
are not. A translator (3 convs, LeakyReLU 0.1) maps the student's last-level features to k * C_t channels
and is trained with the student. When the two maps differ in size, the larger is average-pooled to the
smaller.

``ft`` is the paper's loss, CE + beta * mean |F_T/||F_T||_2 - F_S/||F_S||_2| on the flattened factors (the
element-wise mean: ``nn.L1Loss`` in the authors' code, as torchdistill and mmrazor implement it). Where the
paper is silent it follows the FT authors' own CIFAR code (github.com/Jangho-Kim/Factor-Transfer-pytorch,
commit 19cce26):

================== ======================================= =====================================================
option             ``ft`` (authors' CIFAR code)            ``ft-crd`` (RepDistiller)
================== ======================================= =====================================================
beta               500 (train_student.py ``--beta 500``)   200 (its FT loss weight)
translator_bn      False (FeatureProjection.Translator:     True (RepDistiller's translator has BN)
                   its BN layers are commented out)
paraphraser_loss   l1 (train_Paraphraser.py ``nn.L1Loss``)  mse
paraphraser epochs 6 of a 164-epoch student budget, scaled  30 of 240 (``init_epochs``), scaled
                   (train_Paraphraser.py ``--epoch 5`` and
                   train_student.py ``--epoch 163``; both
                   loops run ``range(0, epoch + 1)``)
paraphraser lr     0.1 (train_Paraphraser.py ``--lr 0.1``;  0.01 for the CIFAR ResNets, else the run's lr
                   its milestones 150/225 are never reached,
                   so constant)
================== ======================================= =====================================================

``ft-crd`` is RepDistiller's variant: each factor is first averaged over channels after squaring (an
attention map). The record states which ran, with which beta, translator and paraphraser settings.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from harness.api import (
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
from harness.kits.distill import DistillMethod, DistillObjective, Outputs, match_size, prestage_recipe

#: Students whose FT/FitNet pre-stage runs at lr 0.01 in RepDistiller (the CIFAR ResNets); others use the run's lr.
LOW_LR_STUDENTS = frozenset(
    {"resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet8x4", "resnet32x4"}
)


def _conv_stack(channels: list[int], transposed: bool = False, bn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    conv = nn.ConvTranspose2d if transposed else nn.Conv2d
    for cin, cout in zip(channels, channels[1:]):
        layers += [conv(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout) if bn else nn.Identity(), nn.LeakyReLU(0.1)]
    return nn.Sequential(*layers)


class Paraphraser(nn.Module):
    def __init__(self, channels: int, k: float = 0.5, bn: bool = False) -> None:
        super().__init__()
        factor = int(channels * k)
        self.encoder = _conv_stack([channels, channels, factor, factor], bn=bn)
        self.decoder = _conv_stack([factor, factor, channels, channels], transposed=True, bn=bn)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        factor = self.encoder(feat)
        return factor, self.decoder(factor)


def translator(s_channels: int, t_channels: int, k: float = 0.5, bn: bool = True) -> nn.Sequential:
    return _conv_stack([s_channels, s_channels, int(t_channels * k), int(t_channels * k)], bn=bn)


RECONSTRUCTION = {"mse": F.mse_loss, "l1": F.l1_loss}


class ParaphraserObjective(Objective):
    """The pre-stage: the paraphraser reconstructs the frozen teacher's last-level features."""

    def __init__(self, paraphraser: Paraphraser, teacher: LevelClassifier, loss: str = "mse") -> None:
        super().__init__(paraphraser)
        self.teacher = self.freeze(teacher)
        self.loss = RECONSTRUCTION[loss]

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        with torch.no_grad():
            feat = self.teacher.forward_features(images)
        _, rec = self.model(feat)
        return StepOutput(losses={"reconstruction": self.loss(rec, feat)})


def factor_loss(f_s: torch.Tensor, f_t: torch.Tensor, form: str) -> torch.Tensor:
    f_s, f_t = match_size(f_s, f_t)
    if form == "channel-mean":  # RepDistiller: normalised channel mean of the squared factor
        f_s, f_t = f_s.pow(2).mean(1), f_t.pow(2).mean(1)
    return (F.normalize(f_s.flatten(1)) - F.normalize(f_t.flatten(1))).abs().mean()


class FTObjective(DistillObjective):
    def __init__(
        self,
        student: LevelClassifier,
        teacher: LevelClassifier,
        paraphraser: Paraphraser,
        k: float,
        beta: float,
        form: str,
        translator_bn: bool = True,
    ) -> None:
        super().__init__(student, teacher)
        self.paraphraser = self.freeze(paraphraser, extra=True)
        self.translator = translator(
            student.level_info[-1].channels, teacher.level_info[-1].channels, k, bn=translator_bn
        )
        self.beta, self.form = beta, form

    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            factor_t = self.paraphraser.encoder(t.feats[-1])
        return {"factor": self.beta * factor_loss(self.translator(s.feats[-1]), factor_t, self.form)}


class FT(DistillMethod):
    options = {
        "k": Option(0.5, "factor channels as a fraction of the teacher's last-level channels", constraint=POSITIVE),
        "beta": Option(500.0, "weight of the factor loss (500: the FT authors' CIFAR code)", constraint=NON_NEGATIVE),
        "translator_bn": Option(False, "BatchNorm in the translator (False: the FT authors' code)"),
        "paraphraser_loss": Option(
            "l1", "reconstruction loss of the paraphraser (l1: the FT authors' code)", tuple(RECONSTRUCTION)
        ),
        "paraphraser_epochs": Option(
            0, "pre-stage epochs; 0 = 6 at a 164-epoch budget (the FT authors'), scaled", constraint=NON_NEGATIVE_INT
        ),
        "paraphraser_lr": Option(0.0, "pre-stage lr; 0 = 0.1 (the FT authors' code)", constraint=NON_NEGATIVE),
    }
    form = "flattened"
    #: the pre-stage's default share of the run's epochs, and its default lr (None: see ``paraphraser_lr``)
    paraphraser_ratio = 6 / 164
    paraphraser_default_lr: float | None = 0.1

    def paraphraser_lr(self, run: RunInfo) -> float:
        if self.opts["paraphraser_lr"]:
            return self.opts["paraphraser_lr"]
        if self.paraphraser_default_lr is not None:
            return self.paraphraser_default_lr
        return 0.01 if run.arch in LOW_LR_STUDENTS else run.recipe.lr

    def paraphraser_config(self) -> dict:
        """The paraphraser stage's config; ``loss`` only when not MSE, so that keys made before the option
        existed (MSE) stay valid. Epochs and lr are in the stage's recipe, which the key also covers."""
        loss = self.opts["paraphraser_loss"]
        return {"k": self.opts["k"], **({"loss": loss} if loss != "mse" else {})}

    def plan(self, run: RunInfo) -> Plan:
        teacher = run.teacher(self.name)
        recipe = prestage_recipe(
            run.recipe, self.opts["paraphraser_epochs"], self.paraphraser_ratio, lr=self.paraphraser_lr(run)
        )
        paraphraser = Stage(
            "paraphraser",
            self.paraphraser_objective,
            config=self.paraphraser_config(),
            needs={"teacher": teacher},
            evaluate="losses",
            recipe=recipe,
        )
        train = Stage(
            "train", self.objective, config=self.config(), needs={"teacher": teacher, "paraphraser": paraphraser}
        )
        return Plan(train, report=self.report)

    def paraphraser_objective(self, ctx: StageContext) -> Objective:
        teacher = require_levels(ctx.model_of("teacher"), self.name + " (teacher)")
        return ParaphraserObjective(
            Paraphraser(teacher.level_info[-1].channels, self.opts["k"]), teacher, self.opts["paraphraser_loss"]
        )

    def make_objective(
        self, student: LevelClassifier, teacher: LevelClassifier, paraphraser: Paraphraser | None = None
    ) -> Objective:
        paraphraser = paraphraser or Paraphraser(teacher.level_info[-1].channels, self.opts["k"])
        return FTObjective(
            student, teacher, paraphraser, self.opts["k"], self.opts["beta"], self.form, self.opts["translator_bn"]
        )

    def objective(self, ctx: StageContext) -> Objective:
        paraphraser = ctx.inputs["paraphraser"].model
        assert isinstance(paraphraser, Paraphraser)
        return self.make_objective(*self.student_and_teacher(ctx), paraphraser)

    def report(self, deployed: TrainedStage, env: RunEnv) -> Report:
        p = deployed.inputs["paraphraser"]
        paraphraser = {
            "artifact": p.key,
            "digest": p.digest,
            "epochs": p.stage.epochs(env.recipe),
            "lr": (p.stage.recipe or env.recipe).lr,
            "loss": self.opts["paraphraser_loss"],
            "final_test_reconstruction": p.final("test_reconstruction"),
        }
        return Report(
            info={
                **deployed.info,
                "factor_form": self.form,
                "beta": self.opts["beta"],
                "translator_bn": self.opts["translator_bn"],
                "paraphraser": paraphraser,
            },
            extra_params=deployed.objective.extra_params(),
        )


class FTChannelMean(FT):
    options = {
        **FT.options,
        "beta": Option(200.0, "weight of the factor loss (RepDistiller)", constraint=NON_NEGATIVE),
        "translator_bn": Option(True, "BatchNorm in the translator (True: RepDistiller)"),
        "paraphraser_loss": Option(
            "mse", "reconstruction loss of the paraphraser (mse: RepDistiller)", tuple(RECONSTRUCTION)
        ),
        "paraphraser_epochs": Option(
            0, "pre-stage epochs; 0 = 30 at a 240-epoch budget, scaled", constraint=NON_NEGATIVE_INT
        ),
        "paraphraser_lr": Option(
            0.0, "pre-stage lr; 0 = 0.01 for CIFAR-ResNet students, else the run's lr", constraint=NON_NEGATIVE
        ),
    }
    form = "channel-mean"
    paraphraser_ratio = 30 / 240
    paraphraser_default_lr = None
