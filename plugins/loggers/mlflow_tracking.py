"""The ``mlflow`` logger: one MLflow run per (method, seed), in MLflow's own default store.

The store is MLflow's: ``MLFLOW_TRACKING_URI`` when set, else its local default (``sqlite:///mlflow.db`` in
the working directory, which ``mlflow ui`` opens there). The experiment is ``MLFLOW_EXPERIMENT_NAME`` or
``encodenet-bench``. Parameters: the run's configuration; metrics ``<stage>/<name>`` at step = the stage's
epoch, and the record's metrics as ``final/<name>``; tags ``bench.*`` (record file, status, run key); the
run ends FINISHED or FAILED. MLflow's telemetry is turned off (``MLFLOW_DISABLE_TELEMETRY``, unless set),
and its SQLAlchemy deprecation warning and database-creation INFO lines are silenced.
"""

from __future__ import annotations

import logging
import os
import time
import warnings

from harness.api import EpochRow, Logger, RunContext, RunResult, import_extra, metric_name

EXPERIMENT = "encodenet-bench"


def _quiet() -> None:
    """Telemetry off (unless the user decided), and MLflow's own noise out of bench's output."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.filterwarnings(
        "ignore", message=r"The ``noload`` loader strategy is deprecated", category=DeprecationWarning
    )
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)


class MLflow(Logger):
    requires = ("mlflow", "mlflow")

    @classmethod
    def check(cls, name: str) -> None:
        _quiet()  # before the first import of mlflow: its telemetry reads the environment then
        import_extra("mlflow", "mlflow", f"--log {name}")

    def start_run(self, run: RunContext) -> None:
        _quiet()
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
        tags = {
            "bench.run": run.name,
            "bench.id": run.id,
            "bench.method": run.method,
            "bench.arch": run.arch,
            "bench.dataset": run.dataset,
            "bench.seed": str(run.seed),
        }
        self.run_id = self.client.create_run(experiment_id, run_name=run.name, tags=tags).info.run_id
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in run.params.items()])

    def log_epoch(self, row: EpochRow) -> None:
        self._metrics({metric_name(row.stage, k): v for k, v in row.values.items() if k != "epoch"}, row.epoch)

    def finish_run(self, result: RunResult) -> None:
        self._metrics({metric_name("final", k): v for k, v in result.metrics.items()}, 0)
        record = result.record
        tags = {
            "bench.status": result.status,
            "bench.record": str(result.path or ""),
            "bench.run_key": str(record.get("run_key") or ""),
        }
        if record.get("error"):
            tags["bench.error"] = str(record["error"])[:4000]
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)
        self.client.set_terminated(self.run_id, "FINISHED" if result.status == "ok" else "FAILED")

    def _metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])
