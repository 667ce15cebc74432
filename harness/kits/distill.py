"""Kit for knowledge-distillation methods (mdistiller's distiller base class is the model).

A :class:`DistillObjective` owns the student (the deployed model), a frozen teacher kept in eval mode, and
any extra trainable modules (regressors, translators). Its forward computes both networks' features through
the level interface, the student's cross-entropy, and the method's own terms (``distill``). Feature shapes
come from ``level_info``, never from per-pair tables. A :class:`DistillMethod` gives
``make_objective(student, teacher)``; its plan is one ``train`` stage that needs the run's teacher stage.
Logit standardisation (Sun et al., CVPR 2024) is shared by the logit distillers: :func:`standardize_logits`,
its options :data:`LOGIT_STD_OPTIONS` and their check :func:`check_logit_std`.

Also shared by several distillers: :class:`ConvRegressor` (RepDistiller's ``ConvReg``: FitNet's regressor, AB's
connectors), :func:`preact_levels` (each level's output before its final ReLU: AB) and
:class:`StudentInitMethod`, the plan of the methods whose distillation is a pre-training ("init") stage of the
student's feature layers followed by plain cross-entropy (AB and FSP in RepDistiller's ``train_student.py``).

The CRD benchmark's feature distillers (AT, NST, VID, SP, PKT, CC) share the pieces at the end: which
features are compared (:func:`level_pairs`, :func:`pooled`), RepDistiller's spatial match
(:func:`match_size`), RepDistiller's three loss weights as options (:func:`weight_options`) and the total
loss they weigh (:class:`WeightedDistillObjective`), and a term summed over paired levels
(:class:`LevelwiseObjective`, :class:`LevelwiseMethod`).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict, cast

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from harness.core.constraints import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE
from harness.core.errors import UsageError
from harness.core.recipes import Recipe
from harness.methods.contract import Method, Option, Plan, Report, RunInfo
from harness.models.levels import LevelClassifier, require_levels
from harness.train.env import RunEnv
from harness.train.objective import Objective, StepOutput
from harness.train.stage import Stage, StageContext, TrainedStage


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's KD term: T^2 * KL(softmax(t/T) || softmax(s/T)), the batch mean of the per-sample KL."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * temperature**2


def standardize_logits(logits: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Logit standardisation (Sun et al., CVPR 2024): each row's Z-score, ``(z - mean(z)) / (eps + std(z))``.

    As the authors' code (``normalize`` in their ``mdistiller/distillers/KD.py`` and ``DKD.py``): ``std`` is
    torch's default sample standard deviation (divided by K - 1 for K classes) and ``eps = 1e-7`` is added to
    it, so a constant row becomes all zeros (we follow the code; with 100 classes the sample and population
    estimates differ by 0.5%). The base temperature is applied by the caller, after
    this (the loss divides the standardised logits by it, as the authors' ``kd_loss``/``dkd_loss`` do)."""
    return (logits - logits.mean(dim=-1, keepdim=True)) / (eps + logits.std(dim=-1, keepdim=True))


#: The options of logit standardisation, shared by the logit distillers that offer it (``kd``, ``dkd``). Their
#: defaults are the authors' README command (``--logit-stand --base-temp 2 --kd-weight 9``, which their
#: ``tools/train.py`` turns into the temperature and the distillation weights).
LOGIT_STD_OPTIONS: dict[str, Option] = {
    "logit_std": Option(
        False,
        "logit standardisation (Sun et al., CVPR 2024): Z-score both networks' logits "
        "before the temperature; the temperature becomes ls_temperature and the "
        "distillation weight ls_weight",
    ),
    "ls_temperature": Option(2.0, "base temperature under logit_std (the authors' --base-temp)", constraint=POSITIVE),
    "ls_weight": Option(
        9.0,
        "distillation weight under logit_std (the authors' --kd-weight): KD's KL weight; DKD's "
        "alpha and beta are multiplied by it",
        constraint=NON_NEGATIVE,
    ),
}


def check_logit_std(method: Method, replaced: Mapping[str, str]) -> None:
    """Refuse, before anything is prepared, settings that logit standardisation would silently ignore:
    ``replaced`` maps each option that ``logit_std=true`` replaces to the ``ls_`` option that replaces it
    (``{"temperature": "ls_temperature"}``); one of them set away from its default while logit_std is on, or
    an ``ls_`` option set while it is off, is an error saying what to set instead."""
    opts, options = method.opts, type(method).options
    changed = [k for k in (*replaced, "ls_temperature", "ls_weight") if opts[k] != options[k].default]
    ignored = (
        [k for k in changed if k in replaced] if opts["logit_std"] else [k for k in changed if k.startswith("ls_")]
    )
    if ignored and opts["logit_std"]:
        raise UsageError(
            f"{method.name}: {', '.join(f'{k}={opts[k]}' for k in ignored)} is not used with "
            f"logit_std=true (the authors' code replaces it); set "
            f"{', '.join(f'{method.name}.{replaced[k]}' for k in ignored)} instead"
        )
    if ignored:
        raise UsageError(
            f"{method.name}: {', '.join(ignored)} only applies with logit_std=true; add "
            f"--opt {method.name}.logit_std=true or drop it"
        )


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
    model: LevelClassifier
    teacher: LevelClassifier

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
    """``ce_weight * CE + kd_weight * T^2 * KL`` (Hinton et al.; CRD benchmark weights 0.1 and 0.9, T = 4).

    ``logit_std``: the KL term on both networks' standardised logits (:func:`standardize_logits`; the CE
    keeps the raw logits), as the logit standardisation authors' ``kd_loss``."""

    def __init__(
        self,
        student: LevelClassifier,
        teacher: LevelClassifier,
        *,
        temperature: float = 4.0,
        ce_weight: float = 0.1,
        kd_weight: float = 0.9,
        logit_std: bool = False,
    ) -> None:
        super().__init__(student, teacher)
        self.temperature, self.ce_weight, self.kd_weight = temperature, ce_weight, kd_weight
        self.logit_std = logit_std

    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.logit_std:
            return {
                "kd": self.kd_weight
                * kd_loss(standardize_logits(s.logits), standardize_logits(t.logits), self.temperature)
            }
        return {"kd": self.kd_weight * kd_loss(s.logits, t.logits, self.temperature)}


class DistillMethod(Method, ABC):
    """A method trained against the run's teacher (``--teacher ARCH``: that architecture's baseline stage, or
    ``--teacher-checkpoint``). Subclasses implement ``make_objective(student, teacher)``, which must raise
    UsageError for a pair it cannot bridge (the harness builds every plan's objectives on untrained
    networks before any training, so such a pair is refused up front)."""

    uses_teacher: ClassVar[bool] = True
    role: ClassVar[str | None] = "objective"  # every distiller composes with architecture rewrites (kd+se)
    options: ClassVar[dict[str, Option]] = {}

    @abstractmethod
    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        """The training objective for this pair; raise UsageError when the pair cannot be bridged."""

    def plan(self, run: RunInfo) -> Plan:
        return Plan(Stage("train", self.objective, config=self.config(), needs={"teacher": run.teacher(self.name)}))

    def student_and_teacher(self, ctx: StageContext) -> tuple[LevelClassifier, LevelClassifier]:
        return (
            require_levels(ctx.build_arch(), self.name),
            require_levels(ctx.model_of("teacher"), self.name + " (teacher)"),
        )

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


class ConvRegressor(nn.Module):
    """Maps a (s_C, s_H, s_H) map to (t_C, t_H, t_H) (RepDistiller's ``ConvReg``): a 3x3 stride-2 conv when the
    student's map is twice the teacher's, a 4x4 stride-2 transposed conv when it is half, otherwise a conv of
    kernel 1 + s_H - t_H; then BN, and ReLU unless ``relu=False`` (AB's connectors). ``what`` names the method
    in the error for a pair it cannot bridge."""

    def __init__(
        self, s_channels: int, s_size: int, t_channels: int, t_size: int, *, relu: bool = True, what: str = "fitnet"
    ) -> None:
        super().__init__()
        if s_size == 2 * t_size:
            self.conv: nn.Module = nn.Conv2d(s_channels, t_channels, kernel_size=3, stride=2, padding=1)
        elif 2 * s_size == t_size:
            self.conv = nn.ConvTranspose2d(s_channels, t_channels, kernel_size=4, stride=2, padding=1)
        elif s_size >= t_size:
            self.conv = nn.Conv2d(s_channels, t_channels, kernel_size=1 + s_size - t_size)
        else:
            raise UsageError(
                f"{what}: the student's map is {s_size}x{s_size} and the teacher's {t_size}x{t_size}; "
                f"the regressor bridges 2x, 1x, 0.5x and any larger student map, not this pair"
            )
        self.bn = nn.BatchNorm2d(t_channels)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class _ReluInputs(TorchFunctionMode):
    """While active, keeps the input of the last ReLU called (a copy when the ReLU works in place)."""

    FUNCS = (F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_)

    def __init__(self) -> None:
        super().__init__()
        self.last: torch.Tensor | None = None

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in self.FUNCS:
            inplace = (
                func in (torch.relu_, torch.Tensor.relu_)
                or bool(kwargs.get("inplace"))
                or (func is F.relu and len(args) > 1 and bool(args[1]))
            )
            self.last = args[0].clone() if inplace else args[0]
        return func(*args, **kwargs)


def preact_levels(model: LevelClassifier, images: torch.Tensor) -> list[torch.Tensor]:
    """Each level's output before its final ReLU (RepDistiller's ``preact=True`` features ``feat[1:-1]``): the
    input of the last ReLU the level calls (``F.relu`` or ``nn.ReLU``, in place or not), found by watching the
    torch calls while the level runs, so no architecture needs a hook for it. The levels run as in
    ``forward_levels``; :func:`require_preact` checks once that every level ends with that ReLU."""
    feats, x = [], model.stem(images)
    for level in model.levels:
        with _ReluInputs() as seen:
            x = level(x)
        feats.append(seen.last if seen.last is not None else x)
    return feats


def require_preact(model: LevelClassifier, what: str) -> None:
    """A UsageError unless every level's output is exactly the ReLU of what :func:`preact_levels` returns
    (checked on a seeded random batch, in eval mode, before any training)."""
    stem = model.level_info[0]
    size = stem.size * stem.reduction
    in_chans = next(p for p in model.stem.parameters() if p.dim() == 4).shape[1]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.randn(2, in_chans, size, size, generator=torch.Generator().manual_seed(0))
            x = x.to(next(model.parameters()).device)
            pre = preact_levels(model, x)
            post = model.forward_levels(x)[1:]
        bad = [i + 1 for i, (p, o) in enumerate(zip(pre, post)) if not torch.equal(F.relu(p), o)]
    finally:
        model.train(was_training)
    if bad:
        raise UsageError(
            f"{what}: level(s) {', '.join(map(str, bad))} of {model.arch_name} do not end with a ReLU, "
            f"so they have no pre-activation output to distil; use an architecture whose levels do "
            f"(the CIFAR ResNets, VGGs)"
        )


def feature_parameters(objective: Objective) -> list[nn.Parameter]:
    """What a student-init stage trains: the student's stem and levels (not its head), and the objective's
    extra modules (RepDistiller's ``init_trainable_list``: ``get_feat_modules()`` and e.g. AB's connectors)."""
    model = objective.model
    assert isinstance(model, LevelClassifier)
    modules = [model.stem, *model.levels, *objective.extra_modules()]
    return [p for m in modules for p in m.parameters()]


class StudentInitMethod(DistillMethod, ABC):
    """A distiller whose transfer is a pre-training stage (RepDistiller's ``init``: AB, FSP).

    Stage ``init`` trains the student's stem and levels (and the objective's extra modules) on the objective of
    :meth:`make_objective` against the frozen teacher, for ``init_epochs`` (by default 30 at the CRD budget of
    240, RepDistiller's ``--init_epochs``, scaled) at the run's learning rate, constant, with the run's
    momentum and weight decay. Stage ``train`` then trains the whole student from those weights with
    cross-entropy alone: RepDistiller's main loop sets these methods' distillation term to 0, so its ``-b``
    weight multiplies nothing. The init stage is a stage of its own: cached, and shared by every run with the
    same teacher, student, settings and recipe."""

    options: ClassVar[dict[str, Option]] = {
        "init_epochs": Option(
            0, "epochs of the init stage; 0 = 30 at a 240-epoch budget, scaled", constraint=NON_NEGATIVE_INT
        ),
    }

    def plan(self, run: RunInfo) -> Plan:
        init = Stage(
            "init",
            self.objective,
            config=self.config(),
            needs={"teacher": run.teacher(self.name)},
            recipe=prestage_recipe(run.recipe, self.opts["init_epochs"]),
            evaluate="losses",
            params=feature_parameters,
        )
        return Plan(Stage("train", self.ce_objective, config=self.config(), needs={"init": init}), report=init_report)

    def ce_objective(self, ctx: StageContext) -> Objective:
        """Stage ``train``: cross-entropy on the whole student, from the init stage's student."""
        return Objective(copy.deepcopy(ctx.inputs["init"].model))


def init_report(deployed: TrainedStage, env: RunEnv) -> Report:
    """The deployed stage's info with the init stage's epochs and final test loss; the init stage's extra
    modules (connectors) as training-time extra parameters."""
    init = deployed.inputs["init"]
    losses = {k: v for k, v in (init.history[-1] if init.history else {}).items() if k.startswith("test_")}
    return Report(
        info={**deployed.info, "init_epochs": len(init.history), "init_final": losses},
        extra_params=init.objective.extra_params(),
    )


# ---- shared by the CRD benchmark's feature distillers (AT, NST, VID, SP, PKT, CC; FT's factor loss) ----
#
# Features, in RepDistiller's terms: its ``model(x, is_feat=True)`` list is ``[f0, f1, ..., fL, pooled]``, the
# stem output, every level's (post-ReLU) output, and the pooled vector before the classifier. Our
# ``forward_levels`` is ``[f0, ..., fL]`` with the same indices (``Outputs.feats``), and RepDistiller's last
# entry is ``head.embed(feats[-1])`` (:func:`pooled`). Its ``preact=True`` list (pre-ReLU level outputs) is used
# by AB only, none of the methods here.

ALL_LEVELS = "all"


def _shape(model: LevelClassifier, index: int) -> str:
    info = model.level_info[index]
    return f"{info.name} {info.channels}x{info.size}x{info.size}"


def level_pairs(student: LevelClassifier, teacher: LevelClassifier, what: str, levels: str = ALL_LEVELS) -> list[int]:
    """The feature indices at which ``what`` compares student and teacher, checked before any training.

    ``all``: RepDistiller's ``feat[1:-1]``, every level's output (features 1..L). RepDistiller zips the two
    networks' lists, so when their level counts differ it silently drops the deeper network's last levels;
    we refuse such a pair with one line naming both networks' levels, and the user chooses the pairs with an
    explicit list. A comma list (``1,2,3``): those feature indices, in both networks (0 is the stem output)."""
    n_s, n_t = student.num_levels, teacher.num_levels
    if levels.strip() == ALL_LEVELS:
        if n_s != n_t:

            def listing(model: LevelClassifier) -> str:
                return ", ".join(_shape(model, i) for i in range(1, model.num_levels + 1))

            raise UsageError(
                f"{what}: student {student.arch_name} has {n_s} levels ({listing(student)}) and teacher "
                f"{teacher.arch_name} has {n_t} ({listing(teacher)}); choose the pairs with --opt "
                f"{what}.levels={','.join(map(str, range(1, min(n_s, n_t) + 1)))} (feature indices in both; "
                f"RepDistiller would pair the first {min(n_s, n_t)})"
            )
        return list(range(1, n_s + 1))
    try:
        indices = [int(part) for part in levels.split(",")]
    except ValueError:
        raise UsageError(
            f"option {what}.levels: expected 'all' or comma-separated feature indices such as 1,2,3, got {levels!r}"
        ) from None
    if len(set(indices)) != len(indices):
        raise UsageError(f"option {what}.levels: {levels!r} names a feature twice")
    for index in indices:
        for model in (student, teacher):
            if not 0 <= index <= model.num_levels:
                raise UsageError(
                    f"{model.arch_name} has features 0..{model.num_levels} (stem, then each level); "
                    f"{what}.levels asks for {index}"
                )
    return indices


def describe_pairs(student: LevelClassifier, teacher: LevelClassifier, indices: list[int]) -> list[str]:
    """For the record: each compared pair as ``student feature CxHxW <- teacher feature CxHxW``."""
    return [f"{_shape(student, i)} <- {_shape(teacher, i)}" for i in indices]


def match_size(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RepDistiller's spatial match (AT, NST, VID; FT): the larger of two maps adaptive-average-pooled to the
    other's size, the smaller unchanged."""
    if a.shape[-1] > b.shape[-1]:
        a = F.adaptive_avg_pool2d(a, (b.shape[-2], b.shape[-1]))
    elif b.shape[-1] > a.shape[-1]:
        b = F.adaptive_avg_pool2d(b, (a.shape[-2], a.shape[-1]))
    return a, b


def pooled(model: LevelClassifier, out: Outputs) -> torch.Tensor:
    """RepDistiller's last ``is_feat`` entry: the globally pooled, flattened last-level map (``head.embed``)."""
    return model.head.embed(out.feats[-1])


def weight_options(weight: float, source: str) -> dict[str, Option]:
    """The three loss weights of RepDistiller's ``train_student.py`` as options: ``weight`` (``-b``, the
    method's own term; its CRD-benchmark value and where it comes from), ``ce_weight`` (``-r``, default 1)
    and ``kd_weight`` (``-a``, Hinton's KD added to the method; 0 in the CRD table), with the KD
    ``temperature`` (``--kd_T``)."""
    return {
        "weight": Option(weight, f"weight of the method's term (RepDistiller -b; {source})", constraint=NON_NEGATIVE),
        "ce_weight": Option(1.0, "weight of the cross-entropy (RepDistiller -r, default 1)", constraint=NON_NEGATIVE),
        "kd_weight": Option(
            0.0,
            "weight of Hinton's T^2 KL added to the method (RepDistiller -a; 0 in the CRD table)",
            constraint=NON_NEGATIVE,
        ),
        "temperature": Option(4.0, "KD temperature when kd_weight > 0 (RepDistiller --kd_T)", constraint=POSITIVE),
    }


class WeightedDistillObjective(DistillObjective, ABC):
    """RepDistiller's total loss (``helper/loops.py`` ``train_distill``): ``-r`` CE + ``-a`` KD + ``-b`` times
    the method's term. Subclasses name the term (``term``) and implement :meth:`feature_loss`; ``info`` goes
    into the record (e.g. the compared feature pairs)."""

    term: ClassVar[str]

    def __init__(
        self,
        student: LevelClassifier,
        teacher: LevelClassifier,
        *,
        weight: float,
        ce_weight: float = 1.0,
        kd_weight: float = 0.0,
        temperature: float = 4.0,
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(student, teacher)
        self.weight, self.ce_weight, self.kd_weight, self.temperature = weight, ce_weight, kd_weight, temperature
        self.info.update(info or {})

    @abstractmethod
    def feature_loss(self, s: Outputs, t: Outputs) -> torch.Tensor:
        """The method's unweighted term (RepDistiller's ``loss_kd``)."""

    def distill(self, s: Outputs, t: Outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        losses = {self.term: self.weight * self.feature_loss(s, t)}
        if self.kd_weight:
            losses["kd"] = self.kd_weight * kd_loss(s.logits, t.logits, self.temperature)
        return losses


class Weights(TypedDict):
    """The weights of :func:`weight_options`, as keyword arguments of a :class:`WeightedDistillObjective`."""

    weight: float
    ce_weight: float
    kd_weight: float
    temperature: float


class WeightedDistillMethod(DistillMethod, ABC):
    """A method with :func:`weight_options`; :meth:`weights` gives them as keyword arguments of a
    :class:`WeightedDistillObjective`."""

    def weights(self) -> Weights:
        return Weights(
            weight=self.opts["weight"],
            ce_weight=self.opts["ce_weight"],
            kd_weight=self.opts["kd_weight"],
            temperature=self.opts["temperature"],
        )


LEVELS_OPTION = Option(ALL_LEVELS, "compared features: 'all' levels (RepDistiller feat[1:-1]) or indices, e.g. 1,2,3")


class LevelwiseObjective(WeightedDistillObjective, ABC):
    """A term summed over paired features (AT, NST, VID: RepDistiller's ``sum(loss_group)``); the record's
    ``info.pairs`` says which features were paired, with their shapes."""

    def __init__(self, student: LevelClassifier, teacher: LevelClassifier, levels: list[int], **weights: float) -> None:
        super().__init__(student, teacher, info={"pairs": describe_pairs(student, teacher, levels)}, **weights)
        self.levels = levels

    @abstractmethod
    def pair_loss(self, k: int, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """The term at the ``k``-th pair (student feature ``f_s``, teacher feature ``f_t``)."""

    def feature_loss(self, s: Outputs, t: Outputs) -> torch.Tensor:
        return cast(torch.Tensor, sum(self.pair_loss(k, s.feats[i], t.feats[i]) for k, i in enumerate(self.levels)))


class LevelwiseMethod(WeightedDistillMethod, ABC):
    """A :class:`WeightedDistillMethod` with a ``levels`` option (:data:`LEVELS_OPTION`)."""

    def levels(self, student: LevelClassifier, teacher: LevelClassifier) -> list[int]:
        return level_pairs(student, teacher, self.name, self.opts["levels"])
