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
SCHEDULES = ("multistep", "cosine", "constant")


@dataclass(frozen=True)
class Recipe:
    """SGD with momentum and weight decay, and a multistep or cosine learning-rate schedule.

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
        return (self.milestones != base.milestones and len(base.milestones) == len(set(base.milestones))
                and len(set(self.milestones)) < len(self.milestones))

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
        if not isinstance(self.nesterov, bool):
            raise UsageError(f"recipe '{self.name}': nesterov must be True or False, got {self.nesterov!r}")
        for m in self.milestones:
            if isinstance(m, bool) or not isinstance(m, int) or not MILESTONE.allows(m) or m > self.epochs:
                raise UsageError(f"recipe '{self.name}': milestones {list(self.milestones)} must be integers in "
                                 f"1..{self.epochs}")
        if self.warmup_epochs > self.epochs:
            raise UsageError(f"recipe '{self.name}': warmup_epochs {self.warmup_epochs} exceeds the {self.epochs} "
                             f"epochs")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d
