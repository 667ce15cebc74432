"""Deprecated: the level interface is :mod:`harness.models.levels` (public through :mod:`harness.api`).

An architecture's parts between resolution changes are called *levels*; a *stage* is a training step. This
module keeps the old import path for one release (until 0.3) and warns.
"""

import warnings

from harness.models.levels import *  # noqa: F401,F403
from harness.models.levels import ArchSpec, ClassifierHead, LevelClassifier, LevelInfo, count_params, require_levels

warnings.warn("harness.models.staged is deprecated: import from harness.api (LevelClassifier, level_info, "
              "forward_levels)", DeprecationWarning, stacklevel=2)

StagedClassifier = LevelClassifier
StageInfo = LevelInfo
require_staged = require_levels

__all__ = ["ArchSpec", "ClassifierHead", "LevelClassifier", "LevelInfo", "StagedClassifier", "StageInfo",
           "count_params", "require_levels", "require_staged"]
