"""Kit for methods that rewrite the architecture (wavelet downsampling, low-rank filters, ...).

Like an attention method, such a method builds the run's architecture, changes it, and trains the result
with plain cross-entropy under the run's recipe; the harness then measures the deployed (rewritten) model,
so its parameters and MACs in the record are those of the new architecture. A method gives
``transform(model) -> dict``: change the freshly built model in place and say what was changed (it goes
into the record's ``info.transform``). Where to change is the architecture's business where it matters
(declared sites of :class:`~harness.models.staged.StagedClassifier`), never a guess from class names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import nn

from harness.methods.contract import Method, Plan, Report, RunInfo
from harness.models.staged import count_params
from harness.train.context import RunEnv, StageContext
from harness.train.objective import Objective
from harness.train.stages import TrainedStage


class ArchTransformMethod(Method, ABC):
    """An architecture-rewriting method: ``transform`` a fresh model, then cross-entropy training."""

    @abstractmethod
    def transform(self, model: nn.Module) -> dict:
        """Rewrite ``model`` in place (new modules may be initialised here: the run's seed is set) and return
        what the record should say about the change."""

    def objective(self, ctx: StageContext) -> Objective:
        model = ctx.build_arch()
        before = count_params(model)
        info = self.transform(model)
        model.transform_info = {**info, "params_before": before, "params_after": count_params(model)}
        return Objective(ctx.place(model))

    def plan(self, run: RunInfo) -> Plan:
        return Plan(super().plan(run).deploy, report=transform_report)


def transform_report(deployed: TrainedStage, env: RunEnv) -> Report:
    """The stage's info plus what the transform changed."""
    return Report(info={**deployed.info, "transform": deployed.model.transform_info},
                  extra_params=deployed.objective.extra_params())
