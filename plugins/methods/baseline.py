"""``baseline``: the architecture trained with plain cross-entropy under the run's recipe.

Its plan is the shared baseline stage itself: other methods that need the baseline (EncodeNet) or a teacher
(``--teacher ARCH`` is that architecture's baseline) resolve the same stage, hence the same key, and reuse it.
"""

from __future__ import annotations

from harness.api import Method, Plan, Register, RunInfo, hookimpl


class Baseline(Method):
    summary = "the architecture trained with cross-entropy (the reference every method is compared with)"

    def plan(self, run: RunInfo) -> Plan:
        return Plan(run.baseline())


@hookimpl
def bench_register_methods(register: Register) -> None:
    register("baseline", Baseline, description=Baseline.summary)
