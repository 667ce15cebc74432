"""The method contract: a method declares its options and returns a plan of stages.

A method is stateless: an instance holds its name and its parsed options, nothing else. From read-only run
information (:class:`RunInfo`) it returns a :class:`Plan`: the stage whose model is deployed (with the
stages it needs) and how its record is reported. The harness resolves the plan (trains or reuses every
stage, keyed by :mod:`harness.core.identity`), measures the deployed model and writes the record; dry runs,
cost tables and validation walk the same plan. The three kinds stay small:

* a loss method overrides :meth:`Method.objective` (build the model with ``ctx.build_arch()`` and wrap it
  in an :class:`~harness.train.objective.Objective` that returns its losses);
* an attention method gives a module factory (:class:`harness.kits.attention.AttentionMethod`);
* a pipeline overrides :meth:`Method.plan` and declares several stages
  (:class:`~harness.train.stage.Stage`), e.g. on ``run.baseline()`` or ``run.teacher``.

A method's ``role`` says what it changes, so that methods compose (``--methods kd+se``,
:mod:`harness.methods.compose`) without the core knowing any of them: ``objective`` (it changes how the run's
architecture is trained; every stage of its plan that trains the student builds it with ``ctx.build_arch()``:
the distillation kit's methods), ``architecture`` (it rewrites the architecture and trains it with plain
cross-entropy: :class:`ArchitectureMethod`, the attention and transform kits; it names the ``sites`` it
rewrites) or None (a pipeline of its own, which composes with nothing). A composition joins at most one
objective with architecture rewrites of disjoint sites.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from torch import nn

from harness.core.constraints import FINITE, INTEGER, Constraint
from harness.core.errors import UsageError
from harness.core.recipes import Recipe
from harness.methods.shared import baseline_stage
from harness.train.stage import StageContext
from harness.train.env import RunEnv
from harness.train.objective import Objective
from harness.train.stage import Stage, TrainedStage


@dataclass(frozen=True)
class Option:
    """A method option, set from the command line as ``--opt <method>.<name>=<value>``.

    A numeric option (an ``int`` or ``float`` default) declares the values it takes with ``constraint`` (a
    :class:`~harness.core.constraints.Constraint`, e.g. ``POSITIVE``) or with ``minimum`` / ``maximum``
    (inclusive): ``Option(0.5, "share kept", minimum=0, maximum=1)``. A value outside it, and NaN or an
    infinity always, is refused with one line naming the option and the range, before anything is prepared."""

    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    constraint: Constraint | None = None
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if self.constraint is None and (self.minimum is not None or self.maximum is not None):
            integer = type(self.default) is int
            object.__setattr__(self, "constraint", Constraint(self.minimum, self.maximum, integer=integer))

    @property
    def numeric(self) -> bool:
        """An ``int`` or ``float`` option (whose values are checked against :attr:`limits`)."""
        return type(self.default) in (int, float)

    @property
    def limits(self) -> Constraint | None:
        """The values a numeric option takes: its declared constraint, else any finite number."""
        if not self.numeric:
            return self.constraint
        return self.constraint or (FINITE if type(self.default) is float else INTEGER)

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
            article = "an" if kind.__name__[0] in "aeiou" else "a"
            raise UsageError(f"option {where}: expected {article} {kind.__name__}, got {raw!r}") from None
        return self.check(value, where)

    def accept(self, value: Any, where: str) -> Any:
        """A value of this option as the run got it: a string (``--opt`` text, or a study file's string) is
        :meth:`parse`d by the option's type; a typed value (a study file's number or boolean) must be of the
        default's type (an integer is taken for a float; for a text option it is its text) and is
        :meth:`check`ed, never turned into text to be parsed again."""
        if isinstance(value, str):
            return self.parse(value, where)
        kind = type(self.default)
        if kind is str and isinstance(value, (int, float)):  # a text option written as a number (keep = 0.5)
            return self.parse(("true" if value else "false") if isinstance(value, bool) else repr(value), where)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.default is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
            article = "an" if kind.__name__[0] in "aeiou" else "a"
            raise UsageError(f"option {where}: expected {article} {kind.__name__}, got {value!r}")
        return self.check(value, where)

    def check(self, value: Any, where: str) -> Any:
        """``value`` when it is one of ``choices`` and within :attr:`limits`, else a UsageError naming ``where``."""
        if self.choices is not None and value not in self.choices:
            raise UsageError(f"option {where}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        limits = self.limits
        if limits is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            limits.check(value, f"option {where}")
        return value


@dataclass(frozen=True)
class RunInfo:
    """What a method plans from: the run's architecture, recipe and seed, and its teacher stage if any."""

    arch: str
    recipe: Recipe
    seed: int = 0
    teacher_stage: Stage | None = None

    def baseline(self, arch: str | None = None) -> Stage:
        """The shared baseline stage of ``arch`` (the run's by default): trained once, reused by every
        method and later invocation that needs it."""
        return baseline_stage(arch or self.arch)

    def teacher(self, method: str) -> Stage:
        """The teacher stage (``--teacher ARCH``'s baseline or ``--teacher-checkpoint``); a clear error when
        the run has none."""
        if self.teacher_stage is None:
            raise UsageError(
                f"method '{method}' needs a teacher: pass --teacher ARCH or --teacher-checkpoint PATH "
                f"(or use a student architecture with a default teacher: bench list archs)"
            )
        return self.teacher_stage


@dataclass
class Report:
    """What a method's record says beyond the harness's own measurements."""

    info: dict = field(default_factory=dict)
    extra_params: int = 0
    figures: dict[str, Callable[[Path], None]] = field(default_factory=dict)  # name -> draw(png_path)


ReportFn = Callable[[TrainedStage, RunEnv], Report]


def default_report(deployed: TrainedStage, env: RunEnv) -> Report:
    """The deployed stage's info, and its objective's training-time extras as extra parameters."""
    return Report(info=dict(deployed.info), extra_params=deployed.objective.extra_params())


@dataclass(frozen=True)
class Plan:
    """A method's plan: the deployed stage (its ``needs`` reach every other stage) and its report."""

    deploy: Stage
    report: ReportFn = default_report

    def stages(self) -> list[Stage]:
        return list(self.deploy.walk())


class Method:
    """Base class of all methods: one training stage of :meth:`objective` on the run's data and recipe.

    Subclasses set ``options`` and override :meth:`objective` (a loss method) or
    :meth:`plan` (a pipeline). ``uses_teacher`` declares that the plan needs the run's teacher, so that a
    missing or superfluous ``--teacher`` is refused before anything is loaded.
    """

    options: ClassVar[Mapping[str, Option]] = {}
    uses_teacher: ClassVar[bool] = False
    #: what the method changes, for composition (see the module's docstring): "objective", "architecture" or None
    role: ClassVar[str | None] = None

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        """``options``: parsed values (see :meth:`parse_options`); each is checked against its Option's choices
        and declared limits here too, so that a method built in code is as valid as one from ``--opt``."""
        self.name = name
        opts = {k: o.default for k, o in self.options.items()}
        for key, value in (options or {}).items():
            if key in self.options:
                self.options[key].check(value, f"{name}.{key}")
        opts.update(options or {})
        self.opts: Mapping[str, Any] = MappingProxyType(opts)

    @classmethod
    def parse_options(cls, name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate this method's option values (``--opt`` text or a study file's typed values,
        :meth:`Option.accept`); unknown keys name the valid ones."""
        parsed = {}
        for key, value in raw.items():
            if key not in cls.options:
                valid = ", ".join(sorted(cls.options)) or "none"
                raise UsageError(f"method '{name}' has no option '{key}'; its options: {valid}")
            parsed[key] = cls.options[key].accept(value, f"{name}.{key}")
        return parsed

    def config(self) -> dict:
        """The method's name and options: its own part of its stages' config, and of its record."""
        return {"name": self.name, "options": dict(sorted(self.opts.items()))}

    def plan(self, run: RunInfo) -> Plan:
        """One stage, ``train``, of :meth:`objective`."""
        return Plan(Stage("train", self.objective, config=self.config()))

    def objective(self, ctx: StageContext) -> Objective:
        """The training objective around a fresh model of the run's architecture (plain cross-entropy)."""
        return Objective(ctx.build_arch())

    @classmethod
    def variant(cls, arg: str) -> type[Method]:
        """The method class a prefix registration (``attn:``) gives for ``attn:<arg>``: by default the class
        itself; a class whose options depend on the argument returns a subclass declaring them, and raises
        UsageError for an argument it does not know."""
        return cls


#: a site every architecture rewrite touches (its default): such a method composes with an objective only
ANY_SITE = "*"


class ArchitectureMethod(Method, ABC):
    """A method that rewrites the run's architecture (:meth:`rewrite`) and trains it with plain cross-entropy
    under the run's recipe. ``sites`` names what it rewrites (its default, :data:`ANY_SITE`, is all of it);
    two rewrites compose when their sites are disjoint (:meth:`rewrite_sites` may depend on the options)."""

    role: ClassVar[str | None] = "architecture"
    sites: ClassVar[tuple[str, ...]] = (ANY_SITE,)

    @abstractmethod
    def rewrite(self, model: nn.Module) -> dict:
        """Change a freshly built ``model`` in place (new modules may be initialised here: the run's seed is
        set) and return what the record should say about the change."""

    def rewrite_sites(self) -> frozenset[str]:
        """The sites this instance rewrites (its class's ``sites`` by default)."""
        return frozenset(self.sites)

    def objective(self, ctx: StageContext) -> Objective:
        """The run's architecture, rewritten; what changed is the objective's ``info``, hence the record's."""
        model = ctx.build_arch()
        info = self.rewrite(model)
        return Objective(ctx.place(model), info=info)
