"""Training recipes: optimiser, schedule and budget, shared by every method of a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from harness.core.errors import UsageError


@dataclass(frozen=True)
class Recipe:
    """SGD with momentum and weight decay, and a multistep or cosine learning-rate schedule.

    ``milestones`` are epochs for the recipe's own ``epochs``; when ``epochs`` is overridden they are scaled
    proportionally (``resolved()`` does this and the resolved values are what is recorded).
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
        values = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(values) - set(self.__dataclass_fields__)
        if unknown:
            raise UsageError(f"unknown recipe field(s) {sorted(unknown)}")
        if "epochs" in values:
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
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0 or self.weight_decay < 0:
            raise UsageError(f"recipe '{self.name}': epochs >= 1, batch size >= 2, lr > 0 and weight decay >= 0 "
                             f"are required (got epochs={self.epochs}, batch={self.batch_size}, lr={self.lr})")
        if self.schedule not in ("multistep", "cosine", "constant"):
            raise UsageError(f"recipe '{self.name}': schedule must be multistep, cosine or constant")
        if any(m < 1 or m > self.epochs for m in self.milestones):
            raise UsageError(f"recipe '{self.name}': milestones {list(self.milestones)} must lie in 1..{self.epochs}")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d
