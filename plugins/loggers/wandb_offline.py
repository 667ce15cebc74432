"""The ``wandb`` logger: a Weights & Biases run per (method, seed), offline unless you say otherwise.

Nothing is sent anywhere: the run is written offline under ``<out>/wandb/`` (``WANDB_DIR`` moves it) and can
be uploaded later with ``wandb sync <out>/wandb/offline-run-*``. Only a ``WANDB_MODE`` you set yourself
(``WANDB_MODE=online`` after ``wandb login``) changes the mode. The project is ``WANDB_PROJECT`` or
``encodenet-bench``; the config is the run's configuration; each stage's numbers are ``<stage>/<name>``
against ``<stage>/epoch``, and the record's metrics go to the run's summary as ``final/<name>``. Console
capture and system metrics are off.
"""

from __future__ import annotations

import os

from harness.api import EpochRow, Logger, RunContext, RunResult, metric_name

PROJECT = "encodenet-bench"


class Wandb(Logger):
    requires = ("wandb", "wandb")

    def start_run(self, run: RunContext) -> None:
        import wandb

        folder = os.environ.get("WANDB_DIR") or str(run.out)
        os.makedirs(folder, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or PROJECT,
            name=run.name,
            config=dict(run.params),
            dir=folder,
            mode=None if os.environ.get("WANDB_MODE") else "offline",
            reinit="create_new",
            group=f"{run.dataset}/{run.arch}",
            job_type=run.method,
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )
        self.stages: set[str] = set()

    def log_epoch(self, row: EpochRow) -> None:
        stage = metric_name(row.stage)
        if stage not in self.stages:
            self.stages.add(stage)
            self.run.define_metric(f"{stage}/epoch")
            self.run.define_metric(f"{stage}/*", step_metric=f"{stage}/epoch")
        self.run.log(
            {f"{stage}/epoch": row.epoch, **{metric_name(stage, k): v for k, v in row.values.items() if k != "epoch"}}
        )

    def finish_run(self, result: RunResult) -> None:
        self.run.summary.update(
            {metric_name("final", k): v for k, v in result.metrics.items()}
            | {"bench/status": result.status, "bench/record": str(result.path or "")}
        )
        self.run.finish(exit_code=0 if result.status == "ok" else 1)
