"""A run's plans as one value: every (seed, method) of a request with the method's plan, built once.

:class:`RunPlan` is what execution, validation, dry runs, the sweep's stage graph and its jobs, ``bench
cost`` and ``bench reproduce`` walk; nothing else loops over seeds and methods. It includes the shared
``baseline`` when a method's plan uses the run architecture's baseline stage and ``baseline`` was not asked
for, so that every table has the row each Δ is measured against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from harness.core.errors import PluginFailed, plugin_code
from harness.methods.contract import Method, Plan, RunInfo
from harness.train.stage import Stage


@dataclass(frozen=True)
class PlanEntry:
    """One (seed, method) of a run and the method's plan for that seed."""

    seed: int
    method: Method
    plan: Plan
    shared_baseline: bool = False  # not asked for: added because another plan uses the baseline stage

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def label(self) -> str:
        return f"{self.method.name} (seed {self.seed})"

    def stages(self) -> list[Stage]:
        """Every stage of the plan, upstream first (the indices sweep jobs name stages by)."""
        return self.plan.stages()


def uses_baseline_of(plan: Plan, arch: str) -> bool:
    return any(s.name == "baseline" and s.arch == arch for s in plan.stages())


@dataclass(frozen=True)
class RunPlan:
    """The entries of a run, seed-major, in the order of ``--methods`` (the shared baseline last)."""

    entries: tuple[PlanEntry, ...]

    @classmethod
    def build(
        cls,
        methods: Sequence[Method],
        seeds: Sequence[int],
        info: Callable[[int], RunInfo],
        *,
        baseline: Callable[[], Method] | None = None,
        plugin_of: Callable[[str], str | None] = lambda name: None,
    ) -> "RunPlan":
        """Plan every method for every seed (``info(seed)``: what the plans are made from). ``baseline``
        makes the shared baseline method, when the run has one to add (``baseline`` is registered and was
        not asked for); it is added to a seed whose plans use the baseline stage of the run's architecture.
        A ``plan()`` that raises is one line naming the method and its plugin (``plugin_of(name)``)."""

        def plan(method: Method, run_info: RunInfo) -> Plan:
            with plugin_code(f"method '{method.name}'.plan()", plugin_of(method.name)):
                result = method.plan(run_info)
            if not isinstance(result, Plan):
                raise PluginFailed(
                    f"method '{method.name}'.plan()",
                    TypeError(f"returned a {type(result).__name__}, not a harness.api.Plan"),
                    plugin_of(method.name),
                )
            return result

        entries = []
        for seed in seeds:
            run_info = info(seed)
            planned = [PlanEntry(seed, m, plan(m, run_info)) for m in methods]
            if baseline is not None and any(uses_baseline_of(e.plan, run_info.arch) for e in planned):
                added = baseline()
                planned.append(PlanEntry(seed, added, plan(added, run_info), shared_baseline=True))
            entries.extend(planned)
        return cls(tuple(entries))

    @property
    def seeds(self) -> list[int]:
        return list(dict.fromkeys(e.seed for e in self.entries))

    def of_seed(self, seed: int) -> list[PlanEntry]:
        return [e for e in self.entries if e.seed == seed]

    def find(self, seed: int, method: str) -> PlanEntry:
        return next(e for e in self.entries if e.seed == seed and e.name == method)

    def __iter__(self) -> Iterator[PlanEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)
