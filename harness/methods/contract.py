"""The method contract.

A method turns (architecture, dataset, recipe, seed) into a trained *deployed* model. One contract serves
the three kinds the harness benchmarks:

* architecture-modifying methods (attention modules) override :meth:`Method.build_model`;
* loss-modifying methods (knowledge distillation) override :meth:`Method.build_objective`, returning an
  :class:`Objective` that owns the extra trainable modules (and a frozen teacher, kept in eval mode);
* multi-stage pipelines (EncodeNet) override :meth:`Method.run` and call the context's shared stages
  (``ctx.baseline()``, ``ctx.teacher()``) and ``ctx.train(...)`` for each of their own stages.

Every training stage goes through ``ctx.train``, which caches the result as an artifact keyed by its full
configuration and checkpoints it for ``--resume``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from harness.train.engine import StepOutput
from harness.core.errors import UsageError
from harness.models.staged import count_params

if TYPE_CHECKING:
    from harness.train.context import RunContext
    from harness.core.recipes import Recipe


@dataclass(frozen=True)
class Option:
    """A method option, set from the command line as ``--opt <method>.<name>=<value>``."""

    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    def parse(self, raw: str, where: str) -> Any:
        kind = type(self.default)
        try:
            if kind is bool:
                lowered = raw.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value: Any = lowered in ("true", "1", "yes")
            elif kind in (int, float, str):
                value = kind(raw)
            elif self.default is None:
                value = raw
            else:
                raise ValueError
        except ValueError:
            raise UsageError(f"option {where}: expected a {kind.__name__}, got {raw!r}") from None
        if self.choices is not None and value not in self.choices:
            raise UsageError(f"option {where}: {raw!r} is not one of {', '.join(map(str, self.choices))}")
        return value


class Objective(nn.Module):
    """What the engine trains: ``forward(images, labels) -> StepOutput``. Plain cross-entropy by default.

    ``model`` is the deployed model; any other trainable submodule is a training-time extra (counted
    separately in the record). ``frozen`` modules (teachers) are kept in eval mode and out of the optimiser.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._frozen: list[nn.Module] = []
        self._frozen_extras: list[nn.Module] = []

    def freeze(self, module: nn.Module, *, extra: bool = False) -> nn.Module:
        """Keep ``module`` out of training: no gradients, BatchNorm statistics fixed (eval mode).

        ``extra=True`` marks a frozen training-time module (FT's paraphraser) that still counts as an
        extra parameter; a teacher (``extra=False``) does not.
        """
        module.eval()
        for p in module.parameters():
            p.requires_grad_(False)
        self._frozen.append(module)
        if extra:
            self._frozen_extras.append(module)
        return module

    def train(self, mode: bool = True) -> "Objective":
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    def extra_modules(self) -> list[nn.Module]:
        """Trainable modules that are not part of the deployed model."""
        return [m for name, m in self.named_children()
                if m is not self.model and (m not in self._frozen or m in self._frozen_extras)]

    def extra_params(self) -> int:
        return sum(count_params(m) for m in self.extra_modules())

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        logits = self.model(images)
        return StepOutput(losses={"ce": F.cross_entropy(logits, labels)}, logits=logits)


@dataclass
class MethodResult:
    """What a method hands back: the deployed model and what its record should say."""

    model: nn.Module
    history: list[dict]
    extra_params: int = 0
    info: dict = field(default_factory=dict)
    figures: dict[str, Callable[[Path], None]] = field(default_factory=dict)  # name -> draw(png_path)


class Method:
    """Base class of all methods. Subclasses set ``summary``/``options`` and override one of the hooks."""

    summary: ClassVar[str] = ""
    options: ClassVar[Mapping[str, Option]] = {}
    uses_teacher: ClassVar[bool] = False

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.opts: dict[str, Any] = {k: o.default for k, o in self.options.items()}
        self.opts.update(options or {})

    @classmethod
    def parse_options(cls, name: str, raw: Mapping[str, str]) -> dict[str, Any]:
        """Validate ``--opt`` values for this method; unknown keys name the valid ones."""
        parsed = {}
        for key, value in raw.items():
            if key not in cls.options:
                valid = ", ".join(sorted(cls.options)) or "none"
                raise UsageError(f"method '{name}' has no option '{key}'; its options: {valid}")
            parsed[key] = cls.options[key].parse(value, f"{name}.{key}")
        return parsed

    def config(self) -> dict:
        """The method's identity in artifact keys and records."""
        return {"name": self.name, "options": dict(sorted(self.opts.items()))}

    def train_config(self, ctx: "RunContext") -> dict:
        """What identifies the trained stage: the method and its options, plus (for subclasses) whatever
        else it depends on, such as the teacher's artifact."""
        return self.config()

    # ---- hooks ---------------------------------------------------------------------------------------

    def planned_stages(self, recipe: "Recipe") -> list[tuple[str, int]]:
        """(stage, epochs) this method trains itself, for ``bench reproduce --dry-run`` estimates; shared
        stages (the baseline, a teacher) are counted by the planner."""
        return [("train", recipe.epochs)]

    needs_baseline: ClassVar[bool] = False  # uses ctx.baseline() of the run's architecture

    def check(self, ctx: "RunContext") -> None:
        """Refuse an impossible setup before any training starts (raise UsageError)."""
        if self.uses_teacher and not ctx.has_teacher:
            raise UsageError(f"method '{self.name}' needs a teacher: pass --teacher ARCH")

    def build_model(self, ctx: "RunContext") -> nn.Module:
        """The deployed model, untrained (architecture-modifying methods change it here)."""
        return ctx.build_arch()

    def build_objective(self, ctx: "RunContext", model: nn.Module) -> Objective:
        """The training objective around ``model`` (loss-modifying methods override this)."""
        return Objective(model)

    def run(self, ctx: "RunContext") -> MethodResult:
        """Train and return the deployed model. The default: build model and objective, train once."""
        model = self.build_model(ctx)
        objective = self.build_objective(ctx, model)
        stage = ctx.train("train", objective, config=self.train_config(ctx))
        return MethodResult(model=model, history=stage.history, extra_params=objective.extra_params(),
                            info=stage.info)
