"""The ``jsonl`` logger, always on: one JSON line per epoch of every stage, beside the records.

While a run trains, its lines go to ``<out>/logs/<run id>.jsonl`` (the run's name and start time), written
and flushed line by line, so a run that is killed still leaves its curve. When the run ends, the file is
renamed after its record: ``<out>/logs/<record name>.jsonl`` (``<out>/failed/logs/`` for a failed run).
Lines: one ``{"event": "start", ...}`` with the run's configuration, one ``{"event": "epoch", "stage": ...,
"epoch": ..., <the engine's numbers>}`` per epoch, one ``{"event": "end", "status": ..., "record": ...,
"metrics": {...}}``. Every line names its run (``run``, ``method``, ``arch``, ``dataset``, ``seed``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from harness.api import EpochRow, Logger, RunContext, RunResult


class JsonLines(Logger):
    def start_run(self, run: RunContext) -> None:
        self.path = run.out / "logs" / f"{run.id}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[str] = open(self.path, "a", encoding="utf-8")
        self.names = {"run": run.name, "method": run.method, "arch": run.arch, "dataset": run.dataset, "seed": run.seed}
        self.write(
            {
                "event": "start",
                **self.names,
                "id": run.id,
                "recipe": run.recipe,
                "teacher": run.teacher,
                "options": dict(run.options),
                "params": dict(run.params),
                "started": run.started,
            }
        )

    def log_epoch(self, row: EpochRow) -> None:
        self.write(
            {
                "event": "epoch",
                **self.names,
                "stage": row.stage,
                "epoch": row.epoch,
                "epochs": row.epochs,
                "step": row.step,
                **{k: v for k, v in row.values.items() if k != "epoch"},
                **({"replayed": True} if row.replayed else {}),
            }
        )

    def finish_run(self, result: RunResult) -> None:
        record = result.record
        self.write(
            {
                "event": "end",
                **self.names,
                "status": result.status,
                "record": str(result.path) if result.path else None,
                "run_key": record.get("run_key"),
                "metrics": result.metrics,
                **({"error": record["error"]} if record.get("error") else {}),
            }
        )
        self.file.close()
        if result.path is not None:  # named after its record from now on
            target = result.path.parent / "logs" / f"{result.path.stem}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path, target)
            self.path = target

    def write(self, line: dict[str, Any]) -> None:
        self.file.write(json.dumps(line, default=str) + "\n")
        self.file.flush()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The lines of a jsonl log (a line cut short by a kill is left out)."""
    lines = []
    for text in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return lines
