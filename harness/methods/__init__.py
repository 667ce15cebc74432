"""The method contract (:mod:`harness.methods.contract`) and the stages methods share
(:mod:`harness.methods.shared`).

Plugins import from :mod:`harness.api`. ``from harness.methods import Method, ...`` (the facade of 0.1) still
works until 0.3 and warns.
"""

from __future__ import annotations

import warnings
from typing import Any

_OLD_FACADE = ("Method", "Option", "Plan", "Report", "RunInfo", "default_report", "StageContext", "Objective",
               "StepOutput", "Stage", "TrainData", "TrainedStage")


def __getattr__(name: str) -> Any:
    if name in _OLD_FACADE:
        import harness.api

        warnings.warn(f"'from harness.methods import {name}' is deprecated: import it from harness.api",
                      DeprecationWarning, stacklevel=2)
        return getattr(harness.api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
