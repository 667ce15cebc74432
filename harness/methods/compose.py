"""Methods that compose: ``kd+se`` distils into an SE-equipped student.

A composition joins methods by their declared ``role`` (:class:`~harness.methods.contract.Method`), never by
their names: at most one ``objective`` (a distiller, or any method that changes how the run's architecture is
trained) with any number of ``architecture`` rewrites (attention modules, wavecnet, lowrank) whose sites are
disjoint. The objective's plan is kept as it is, and every stage of it that belongs to the method (no
``arch``: not a shared baseline or teacher) gets the rewrites, applied in the order written to each model of
the run's architecture the stage builds (:class:`~harness.train.stage.Stage` ``rewrites``). Without an
objective, the rewritten architecture is trained with cross-entropy, like one architecture method.

Identity follows: a composed stage's key is its objective's stage key with the rewritten architecture (the
rewrites' configs enter the stage's ``archs``, their code its code identity), so ``kd+se`` reuses neither
``kd``'s nor ``se``'s stages, shares the teacher, and ``se+kd`` is the same training as ``kd+se``. Options are
the components', named ``COMPONENT.OPTION`` (``--opt kd+se.kd.temperature=2``); ``--opt kd.temperature=2``
applies to ``kd`` wherever the run uses it, alone or composed (:func:`component_options`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from harness.core.errors import UsageError
from harness.methods.contract import ANY_SITE, ArchitectureMethod, Method, Plan, RunInfo
from harness.methods.naming import SEPARATOR, parts_of
from harness.train.stage import Stage

ROLES = ("objective", "architecture")
_ROLE_TEXT = "'objective' (the distillers) or 'architecture' (attention modules, wavecnet, lowrank)"


def check_roles(name: str, parts: Sequence[tuple[str, type[Method]]]) -> None:
    """A UsageError (one line) when the methods of ``name`` cannot compose by their declared roles."""
    names = [part for part, _ in parts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"method '{name}' lists '{twice[0]}' twice")
    for part, cls in parts:
        role = getattr(cls, "role", None)
        if role not in ROLES:
            what = "declares no role (a pipeline of its own stages)" if role is None else f"has role {role!r}"
            raise UsageError(
                f"method '{name}': '{part}' {what}, so it composes with nothing; '{SEPARATOR}' joins "
                f"methods of role {_ROLE_TEXT}"
            )
    objectives = [part for part, cls in parts if cls.role == "objective"]
    if len(objectives) > 1:
        raise UsageError(
            f"method '{name}': '{objectives[0]}' and '{objectives[1]}' both change the training "
            f"objective; a composition takes one objective and architecture rewrites (e.g. kd+se)"
        )


def check_sites(name: str, rewrites: Sequence[ArchitectureMethod]) -> None:
    """A UsageError when two architecture rewrites of ``name`` rewrite the same site."""
    for i, first in enumerate(rewrites):
        for second in rewrites[i + 1 :]:
            a, b = first.rewrite_sites(), second.rewrite_sites()
            whole = next((m for m, s in ((first, a), (second, b)) if ANY_SITE in s), None)
            if whole is not None:
                raise UsageError(
                    f"method '{name}': '{whole.name}' rewrites the whole architecture (it declares no "
                    "sites), so it composes with an objective only, not with "
                    f"'{(second if whole is first else first).name}'"
                )
            shared = sorted(a & b)
            if shared:
                raise UsageError(
                    f"method '{name}': '{first.name}' and '{second.name}' both rewrite the {shared[0]}; "
                    "compose rewrites of different sites (e.g. --opt "
                    f"{name}.{second.name}.placement=level)"
                )


def compose(name: str, parts: Sequence[tuple[str, type[Method]]]) -> type[Method]:
    """The method class of the composition ``name`` of ``parts`` ((name, class) in the order written);
    a UsageError when their roles do not compose."""
    if len(parts) < 2:
        raise UsageError(f"method '{name}': '{SEPARATOR}' joins two or more methods (e.g. kd+se)")
    check_roles(name, parts)
    options = {f"{part}.{key}": option for part, cls in parts for key, option in cls.options.items()}
    return type(
        f"Composed[{name}]",
        (ComposedMethod,),
        {
            "parts": tuple(parts),
            "options": options,
            "uses_teacher": any(cls.uses_teacher for _, cls in parts),
            "summary": " + ".join(f"{part} ({cls.role})" for part, cls in parts),
        },
    )


def component_options(name: str, table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The option values of method ``name`` from a run's options table: its own; for a composition, also
    every component's own table (``kd.temperature`` applies inside ``kd+se`` as ``kd.temperature``), the
    composition's own qualified values winning."""
    parts = parts_of(name)
    if len(parts) < 2:
        return dict(table.get(name, {}))
    given = {f"{part}.{key}": value for part in parts for key, value in table.get(part, {}).items()}
    return {**given, **table.get(name, {})}


class ComposedMethod(Method):
    """Methods joined by ``+``: one objective (or cross-entropy) trained on the architecture as the
    rewrites leave it. Built by :func:`compose`; ``parts`` holds the components' names and classes."""

    parts: ClassVar[tuple[tuple[str, type[Method]], ...]] = ()

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        self.components: list[Method] = []
        for part, cls in self.parts:
            prefix = part + "."
            own = {key[len(prefix) :]: value for key, value in self.opts.items() if key.startswith(prefix)}
            self.components.append(cls(part, own))
        self.rewrites = [c for c in self.components if isinstance(c, ArchitectureMethod)]
        check_sites(name, self.rewrites)

    def config(self) -> dict:
        return {**super().config(), "components": [c.config() for c in self.components]}

    def plan(self, run: RunInfo) -> Plan:
        """The objective's plan with the rewrites on its own stages; without an objective, one ``train``
        stage of cross-entropy on the rewritten architecture."""
        rewrites = tuple(self.rewrites)
        objective = next((c for c in self.components if c.role == "objective"), None)
        if objective is None:
            return Plan(Stage("train", self.objective, config={"objective": "cross-entropy"}, rewrites=rewrites))
        plan = objective.plan(run)
        done: dict[int, Stage] = {}

        def rewritten(stage: Stage) -> Stage:
            if stage.arch is not None:  # a shared stage (a baseline, the teacher): never rewritten
                return stage
            if id(stage) not in done:
                needs = {key: rewritten(up) for key, up in stage.needs.items()}
                done[id(stage)] = replace(stage, needs=needs, rewrites=stage.rewrites + rewrites)
            return done[id(stage)]

        return Plan(rewritten(plan.deploy), report=plan.report)
