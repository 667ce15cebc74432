"""The ``trackio`` logger: a trackio run per (method, seed), in trackio's local store.

The store is trackio's: ``TRACKIO_DIR`` (read when trackio is imported), else ``$HF_HOME/trackio``
(``~/.cache/huggingface/trackio``), one SQLite file per project; ``trackio show --project encodenet-bench``
opens it. The project is ``TRACKIO_PROJECT`` or ``encodenet-bench``. Numbers are logged as
``<stage>/<name>`` with ``<stage>/epoch``, at step = the run's epoch count (``EpochRow.step``: trackio wants
one step across the run); the record's metrics as ``final/<name>`` at the last step. No server starts and
nothing is sent (no Space, no server URL is given); trackio's banner lines go to stderr, not stdout.

trackio 0.43 requires ``pillow<13`` while bench pins pillow 13.0.0: install it with ``pip install --no-deps
trackio==0.43.0`` and then its dependencies (see docs/loggers.md); scalar logging works with pillow 13.
"""

from __future__ import annotations

import contextlib
import os
import sys

from harness.api import EpochRow, Logger, RunContext, RunResult, import_extra, metric_name

PROJECT = "encodenet-bench"


class Trackio(Logger):
    requires = ("trackio", "trackio")

    @classmethod
    def check(cls, name: str) -> None:
        import_extra(
            "trackio",
            "trackio",
            f"--log {name}",
            hint="; with bench's constraints.txt (pillow 13, which trackio 0.43 excludes): pip install "
            "--no-deps trackio==0.43.0, then its dependencies (docs/loggers.md)",
        )

    def start_run(self, run: RunContext) -> None:
        import trackio

        with contextlib.redirect_stdout(sys.stderr):  # its banner: bench's stdout is for tables
            self.run = trackio.init(
                project=os.environ.get("TRACKIO_PROJECT") or PROJECT,
                name=run.name,
                config=dict(run.params),
                embed=False,
                auto_log_cpu=False,
                auto_log_gpu=False,
            )
        self.step = 0

    def log_epoch(self, row: EpochRow) -> None:
        stage = metric_name(row.stage)
        self.step = max(self.step, row.step)
        self.run.log(
            {f"{stage}/epoch": row.epoch, **{metric_name(stage, k): v for k, v in row.values.items() if k != "epoch"}},
            step=row.step,
        )

    def finish_run(self, result: RunResult) -> None:
        metrics = {metric_name("final", k): v for k, v in result.metrics.items()}
        if metrics:
            self.run.log(metrics, step=self.step)
        with contextlib.redirect_stdout(sys.stderr):
            self.run.finish()
