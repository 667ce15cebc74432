"""What a method plugin is written against (see the README's plugin guide).

``from harness.methods import Method, Option, Objective, StepOutput`` is enough for a loss method;
pipelines add ``Plan``, ``Stage``, ``TrainData`` and ``Report``; attention and distillation methods start from
the kits in :mod:`harness.kits`.
"""

from harness.methods.contract import Method, Option, Plan, Report, RunInfo, default_report
from harness.train.context import StageContext
from harness.train.objective import Objective, StepOutput
from harness.train.stages import Stage, TrainData, TrainedStage

__all__ = ["Method", "Option", "Plan", "Report", "RunInfo", "default_report", "StageContext", "Objective",
           "StepOutput", "Stage", "TrainData", "TrainedStage"]
