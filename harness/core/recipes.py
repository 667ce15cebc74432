"""Training recipes: optimiser, schedule and budget, shared by every method of a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from harness.core.constraints import COUNT, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, Constraint, at_least, between
from harness.core.errors import UsageError

#: The numeric fields of a recipe and the values each takes (also the CLI overrides' types: ``--lr`` ...).
RECIPE_LIMITS: dict[str, Constraint] = {
    "epochs": COUNT,
    "batch_size": at_least(2, integer=True),  # batch norm needs two images
    "lr": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "momentum": between(0, 1, exclusive_maximum=True),
    "gamma": POSITIVE,
    "warmup_epochs": NON_NEGATIVE_INT,
}
#: each of ``milestones``
MILESTONE = COUNT
SCHEDULES = ("multistep", "cosine", "constant", "airbench")
#: The fast-track fields (issue 33): each defaults to what every other recipe does, and a field at its default is
#: left out of :meth:`Recipe.as_dict`, so that the records and stage keys of those recipes are what they were.
#: ``label_smoothing``: of every cross-entropy on labels (Szegedy et al. 2016); ``norm_lr_scale``: BatchNorm
#: parameters train at this multiple of the learning rate and this fraction of the weight decay (airbench's
#: ``bias_scaler``); ``averaging``: ``lookahead`` (Zhang et al. 2019, airbench's schedule) or none;
#: ``translate``: the padding of the random crop (pixels); ``pad_mode``: ``zeros`` (RandomCrop(padding=)) or
#: ``reflect`` (airbench); ``flip``: ``random`` per image and epoch, ``alternating`` (airbench: a random flip
#: per image drawn once, every image flipped back on odd epochs) or ``none``; ``whiten``: how many training
#: images the frozen patch-whitening first layer is computed from (0: not whitened).
FAST_DEFAULTS: dict[str, object] = {
    "label_smoothing": 0.0,
    "norm_lr_scale": 1.0,
    "averaging": "none",
    "translate": 4,
    "pad_mode": "zeros",
    "flip": "random",
    "whiten": 0,
}
AVERAGING = ("none", "lookahead")
PAD_MODES = ("zeros", "reflect")
FLIPS = ("random", "alternating", "none")
#: test-time augmentation: not a recipe field but the run's evaluation option (``--tta``), which the records'
#: protocol holds; defined here, with the recipe's choices, for the command line
TTA_LEVELS = ("none", "mirror", "mirror-translate")
CHOICES = {"averaging": AVERAGING, "pad_mode": PAD_MODES, "flip": FLIPS}
#: the numeric fast-track fields and the values each takes
FAST_LIMITS: dict[str, Constraint] = {
    "label_smoothing": between(0, 1, exclusive_maximum=True),
    "norm_lr_scale": POSITIVE,
    "translate": NON_NEGATIVE_INT,
    "whiten": NON_NEGATIVE_INT,
}


@dataclass(frozen=True)
class Recipe:
    """SGD with momentum and weight decay, and a multistep, cosine, constant or per-step (``airbench``)
    learning-rate schedule; and the fast-track pieces (:data:`FAST_DEFAULTS`: label smoothing, BatchNorm
    learning-rate scale, weight averaging, augmentation, whitening), off unless a recipe sets them.

    ``prefer_bf16``: a default, not a setting. A run that gives neither ``--amp`` nor ``--no-amp`` trains under
    bf16 autocast on CUDA (every recipe) and, for a recipe that prefers it, on a CPU with native bf16
    instructions under the native numerics profile (:func:`harness.run.prepare.resolve_amp`). It is left out of
    :meth:`as_dict`: the engine's ``amp``, in every record and stage key, says what a run used.

    ``milestones`` are epochs for the recipe's own ``epochs``; when ``epochs`` is overridden they are scaled
    proportionally (:meth:`with_overrides` does this and the scaled values are what is recorded).
    A recipe knows nothing of methods: a method whose extra stages have their own budget (EncodeNet's
    autoencoder, FT's paraphraser) derives it from ``epochs`` (:meth:`scaled`).
    """

    name: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "multistep"  # multistep | cosine | constant
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    norm_lr_scale: float = 1.0
    averaging: str = "none"
    translate: int = 4
    pad_mode: str = "zeros"
    flip: str = "random"
    whiten: int = 0
    prefer_bf16: bool = False
    notes: str = ""

    def with_overrides(self, **overrides: object) -> "Recipe":
        """A copy with CLI overrides applied; ``epochs`` rescales the milestones unless they are given."""
        values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(values) - set(self.__dataclass_fields__)
        if unknown:
            raise UsageError(f"unknown recipe field(s) {sorted(unknown)}")
        if "epochs" in values:
            RECIPE_LIMITS["epochs"].check(values["epochs"], f"recipe '{self.name}': epochs")  # before it is used
            scale = int(values["epochs"]) / self.epochs
            if "milestones" not in values and self.milestones:
                values["milestones"] = tuple(max(1, round(m * scale)) for m in self.milestones)
        recipe = replace(self, **values)
        recipe.validate()
        return recipe

    def collided_milestones(self, base: "Recipe") -> bool:
        """Whether this recipe's milestones were scaled from ``base``'s (an ``epochs`` override) and some now
        coincide, so that the learning rate drops several times at once."""
        return (
            self.milestones != base.milestones
            and len(base.milestones) == len(set(base.milestones))
            and len(set(self.milestones)) < len(self.milestones)
        )

    def scaled(self, ratio: float) -> int:
        """``ratio`` times this recipe's epochs, at least one: the budget of a method's extra stage."""
        return max(1, round(self.epochs * ratio))

    def validate(self) -> None:
        """Every numeric field within :data:`RECIPE_LIMITS` (finite; NaN, infinities, zero or negative values
        where they make no sense are refused), a known schedule, milestones within the epochs."""
        for name, limit in RECIPE_LIMITS.items():
            value = getattr(self, name)
            if limit.integer and not isinstance(value, int):
                raise UsageError(f"recipe '{self.name}': {name} must be {limit.describe()}, got {value!r}")
            limit.check(value, f"recipe '{self.name}': {name}")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"recipe '{self.name}': schedule must be {', '.join(SCHEDULES)}, got {self.schedule!r}")
        for flag in ("nesterov", "prefer_bf16"):
            if not isinstance(getattr(self, flag), bool):
                raise UsageError(f"recipe '{self.name}': {flag} must be True or False, got {getattr(self, flag)!r}")
        for m in self.milestones:
            if isinstance(m, bool) or not isinstance(m, int) or not MILESTONE.allows(m) or m > self.epochs:
                raise UsageError(
                    f"recipe '{self.name}': milestones {list(self.milestones)} must be integers in 1..{self.epochs}"
                )
        for name, limit in FAST_LIMITS.items():
            value = getattr(self, name)
            if limit.integer and (isinstance(value, bool) or not isinstance(value, int)):
                raise UsageError(f"recipe '{self.name}': {name} must be {limit.describe()}, got {value!r}")
            limit.check(value, f"recipe '{self.name}': {name}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise UsageError(
                    f"recipe '{self.name}': {name} must be {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        if self.warmup_epochs > self.epochs:
            raise UsageError(
                f"recipe '{self.name}': warmup_epochs {self.warmup_epochs} exceeds the {self.epochs} epochs"
            )

    def as_dict(self) -> dict:
        """Every field, but the fast-track fields (:data:`FAST_DEFAULTS`) only where they differ from their
        defaults: a recipe that uses none of them keeps the records and stage keys it always had."""
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        del d["prefer_bf16"]  # a default for the engine's amp, which the records and keys hold
        for name, default in FAST_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        return d
