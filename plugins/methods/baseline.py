"""``baseline``: the architecture trained with plain cross-entropy under the run's recipe.

Its plan is the shared baseline stage itself: other methods that need the baseline (EncodeNet) or a teacher
(``--teacher ARCH`` is that architecture's baseline) resolve the same stage, hence the same key, and reuse it.
"""

from __future__ import annotations

from harness.api import Method, Plan, RunInfo


class Baseline(Method):
    def plan(self, run: RunInfo) -> Plan:
        return Plan(run.baseline())
