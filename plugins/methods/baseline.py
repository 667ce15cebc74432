"""``baseline``: the architecture trained with plain cross-entropy under the run's recipe.

Its trained model is the shared ``baseline`` artifact: other methods that need the baseline (EncodeNet)
or a teacher (``--teacher ARCH`` trains that architecture's baseline) reuse it instead of training again.
"""

from __future__ import annotations

from harness import hookimpl
from harness.train.context import RunContext
from harness.methods.contract import Method, MethodResult


class Baseline(Method):
    summary = "the architecture trained with cross-entropy (the reference every method is compared with)"
    needs_baseline = True

    def planned_stages(self, recipe):  # type: ignore[no-untyped-def]
        return []  # its only stage is the shared baseline

    def run(self, ctx: RunContext) -> MethodResult:
        stage = ctx.baseline()
        assert stage.model is not None
        return MethodResult(model=stage.model, history=stage.history, info=stage.info)


@hookimpl
def bench_register_methods(register):  # type: ignore[no-untyped-def]
    register("baseline", Baseline, description=Baseline.summary)
