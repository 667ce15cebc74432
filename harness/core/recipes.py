"""Training recipes: optimiser, schedule and budget, shared by every method of a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from harness.core.errors import UsageError


@dataclass(frozen=True)
class Recipe:
    """SGD with momentum and weight decay, and a multistep or cosine learning-rate schedule.

    ``milestones`` are epochs for the recipe's own ``epochs``; when ``epochs`` is overridden they are scaled
    proportionally (``resolved()`` does this and the resolved values are what is recorded).
    ``stage_epochs`` holds the budgets of methods' extra stages at this recipe's scale (for example the
    EncodeNet autoencoder's 500 epochs against the baseline's 300); methods scale them with ``epochs``.
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
    stage_epochs: dict[str, int] = field(default_factory=dict)
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
            if "stage_epochs" not in values:
                values["stage_epochs"] = {k: max(1, round(v * scale)) for k, v in self.stage_epochs.items()}
        recipe = replace(self, **values)
        recipe.validate()
        return recipe

    def stage_budget(self, stage: str, ratio: float) -> int:
        """Epochs of a method's extra stage: the recipe's own budget for it when it has one (scaled with
        ``--epochs`` like the milestones), else ``ratio`` times the recipe's epochs; at least one."""
        if stage in self.stage_epochs:
            return self.stage_epochs[stage]
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
