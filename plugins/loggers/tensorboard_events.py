"""The ``tensorboard`` logger: TensorBoard event files, ``<out>/tensorboard/<run id>/``.

Written with ``tensorboard.summary.Writer`` (numpy only: no torch, no TensorFlow). One scalar per number of
each epoch, tagged ``<stage>/<name>`` (``baseline-resnet20/test_acc``) at step = the stage's epoch; the
record's metrics as ``final/<name>`` at step 0. ``tensorboard --logdir <out>/tensorboard`` shows them.
The writer stores scalars as tensor summaries: read them back with ``EventAccumulator(...).Tensors(tag)``.
"""

from __future__ import annotations

from harness.api import EpochRow, Logger, RunContext, RunResult, metric_name


class TensorBoard(Logger):
    requires = ("tensorboard", "tensorboard")

    def start_run(self, run: RunContext) -> None:
        from tensorboard.summary import Writer

        self.logdir = run.out / "tensorboard" / run.id
        self.writer = Writer(str(self.logdir))

    def log_epoch(self, row: EpochRow) -> None:
        for name, value in row.values.items():
            if name != "epoch":
                self.writer.add_scalar(metric_name(row.stage, name), value, step=row.epoch)
        self.writer.flush()

    def finish_run(self, result: RunResult) -> None:
        for name, value in result.metrics.items():
            self.writer.add_scalar(metric_name("final", name), value, step=0)
        self.writer.close()
