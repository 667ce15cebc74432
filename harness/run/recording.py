"""Records of a run's (seed, method) entries: built from the resolved stages, written, and found again.

The record type and its file layout are :mod:`harness.results.records`'; this module fills them from the
objects of a run (its prepared request, a plan entry's deployed stage, the method's report and the
measurements) and looks up records an earlier invocation wrote (``--resume``, ``bench reproduce``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from harness.core.errors import warn
from harness.core.identity import config_key
from harness.core.progress import Reporter
from harness.methods.contract import Method, Report
from harness.models.levels import count_params
from harness.results.records import (
    SCHEMA,
    DatasetEntry,
    EngineEntry,
    LoadReport,
    Metrics,
    ProtocolEntry,
    Record,
    StageEntry,
    StudyEntry,
    TeacherEntry,
    device_info,
    load_records,
    now_iso,
    record_path,
    record_stem,
    versions,
)
from harness.results.fingerprint import of_stages
from harness.run.prepare import PreparedRun
from harness.train.env import RunEnv
from harness.train.stage import TrainedStage


def teacher_of(deployed: TrainedStage) -> TrainedStage | None:
    """The stage a plan consumed under the name ``teacher``, if any."""
    for node in deployed.walk():
        if "teacher" in node.inputs:
            return node.inputs["teacher"]
    return None


def protocol(req: Any) -> dict[str, Any]:
    """How the reported numbers were obtained: ``select`` (which epoch's weights) and, only where it is on,
    ``tta`` (the test-time augmentation of the last epoch's evaluation): tables never mix the two."""
    out: dict[str, Any] = {"select": req.select}
    if req.tta != "none":
        out["tta"] = req.tta
    return out


def record_base(run: PreparedRun, method: Method, env: RunEnv, status: str) -> Record:
    """What every record of a (method, seed) says, whether the run succeeded or failed."""
    req = run.request
    record: Record = {
        "schema": SCHEMA,
        "status": status,
        "created": now_iso(),
        "method": {
            **method.config(),
            "plugin": run.plugins.methods.resolve(method.name).entry.plugin,
            "defaults": {k: o.default for k, o in method.options.items()},
        },
        "arch": req.arch,
        "dataset": cast(DatasetEntry, env.dataset.describe()),
        "seed": env.seed,
        "recipe": run.recipe.as_dict(),
        "engine": cast(EngineEntry, env.engine()),
        "protocol": cast(ProtocolEntry, protocol(req)),
        "config": {
            "select": req.select,
            "amp": run.amp,
            "channels_last": run.channels_last,
            "seeds_in_run": req.seeds,
            "methods_in_run": req.methods,
        },
        "versions": versions(),
        "device": device_info(run.device),
    }
    if req.study is not None:
        record["study"] = cast(StudyEntry, req.study)
    return record


def teacher_entry(run: PreparedRun, deployed: TrainedStage) -> TeacherEntry | None:
    t = teacher_of(deployed)
    if t is None:
        return None
    checkpoint = run.request.teacher_checkpoint
    return {
        "arch": t.stage.arch or "",
        "artifact": t.key,
        "weights_digest": t.digest,
        "test_acc": t.final("test_acc"),
        "params": count_params(t.model),
        "stage": t.stage.name,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "trained_in_this_run": t.origin == "trained",
        "default": run.teacher_default is not None,
        "default_source": run.teacher_default,
        "source": teacher_source(run, t),
    }


def teacher_source(run: PreparedRun, t: TrainedStage) -> dict | None:
    """Where a teacher that was not trained here came from: ``--teacher-checkpoint``'s bundle, URL or Hub
    repository, or a bundle imported into the cache (``bench artifacts import``) whose key the run found."""
    if run.teacher_source is not None:
        return run.teacher_source
    if "trained" in (t.origin, t.first_origin) or t.key is None:
        return None
    imported = (run.store.meta(t.stage.name, t.key) or {}).get("imported")
    if not imported:
        return None
    return {
        "kind": "imported",
        "source": imported.get("bundle"),
        "sha256": imported.get("sha256"),
        "artifact": f"{t.stage.name}/{t.key}",
        "imported": imported.get("imported"),
    }


def stage_entries(stages: Iterable[TrainedStage]) -> dict[str, StageEntry]:
    """What a record says of each stage (upstream first), with its per-epoch history: the curves an exact
    check replays (:mod:`harness.results.replay`) for every stage, not only the deployed one."""
    return {node.label: cast(StageEntry, {**node.entry(), "curves": node.history}) for node in stages}


def build_record(
    run: PreparedRun, method: Method, env: RunEnv, deployed: TrainedStage, report: Report, wall: float
) -> Record:
    from harness.run.measure import measure  # here: its distortions import torchvision, which planning never needs

    assert deployed.key is not None
    return {
        **record_base(run, method, env, "ok"),
        "run_key": deployed.key,
        "teacher": teacher_entry(run, deployed),
        "metrics": cast(Metrics, measure(env, deployed, report, run)),
        "curves": deployed.history,
        "stages": stage_entries(deployed.walk()),
        "platform": of_stages((node.label, node.platform) for node in deployed.walk()),
        "info": report.info,
        "wall_seconds": wall,
    }


def failed_record(
    run: PreparedRun, method: Method, env: RunEnv, error: str, finished: list[TrainedStage], wall: float
) -> Record:
    """The record of a (method, seed) that failed: its error line and the stages that did finish, no metrics.
    It is written under ``<out>/failed/`` (never read as a result) and keyed by what was run
    (:func:`failure_key`), so that a later success of the same run removes it."""
    record = record_base(run, method, env, "failed")
    req = run.request
    record.update(
        {
            "teacher": {
                "arch": (run.teacher.arch if run.teacher else req.teacher) or "",
                "checkpoint": str(req.teacher_checkpoint) if req.teacher_checkpoint else None,
            },
            "error": error,
            "stages": stage_entries(finished),
            "wall_seconds": wall,
        }
    )
    record["failure_key"] = failure_key(record)
    return record


def failure_key(record: Record) -> str:
    """What a run is, for its failed record's name: everything the record says but when, where and with whom."""
    config = {k: v for k, v in record["config"].items() if k not in ("seeds_in_run", "methods_in_run")}
    return config_key(
        {k: record[k] for k in ("method", "arch", "teacher", "dataset", "seed", "recipe", "engine")}
        | {"config": config}
    )


def record_name(run: PreparedRun, method: Method, env: RunEnv) -> str:
    """The name of the (method, seed)'s run, known before it trains (loggers' run names: TensorBoard's folders,
    MLflow's run names): its record's name without the key, the method followed by its non-default options
    (``cifar10__resnet8__kd+temperature=2__crd__seed0``), so that two runs of one method with other options are
    told apart by name, as the tables' rows are (``kd [temperature=2]``)."""
    stem = record_stem(env.dataset.name, run.request.arch, method.name, run.recipe.name, env.seed)
    options = "".join(f"+{_name_part(k)}={_name_part(v)}" for k, v in non_default_options(method).items())
    if not options:
        return stem
    data, arch, name, rest = stem.split("__", 3)
    return f"{data}__{arch}__{name}{options[:120]}__{rest}"


def _name_part(value: object) -> str:
    """``value`` as a part of a file or run name: characters other than letters, digits, ``.``, ``_`` and ``-``
    become ``-`` (a negative number keeps its sign)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(value))


def non_default_options(method: Method) -> dict[str, object]:
    """The method's options whose values differ from their declared defaults, by name."""
    declared = method.options
    return {k: v for k, v in sorted(method.opts.items()) if k not in declared or v != declared[k].default}


def earlier_failure(run: PreparedRun, method: Method, env: RunEnv) -> Path:
    """Where a failed record of this very (method, seed) would be (a success removes it)."""
    return record_path(run.request.out, failed_record(run, method, env, "", [], 0))


def save_figures(report: Report, record_file: Path, reporter: Reporter) -> dict[str, str]:
    """Draw a method's figures as PNG files in a folder beside its record; returns name -> path."""
    folder = record_file.with_name(record_file.stem + ".figures")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a figure must never cost the run its record
        reporter.note(f"figures could not be saved in {folder}: {exc.strerror or type(exc).__name__}")
        return {}
    saved = {}
    for name, draw in report.figures.items():
        path = folder / f"{name}.png"
        try:
            draw(path)
            saved[name] = str(path)
        except Exception as exc:  # a figure must never cost the run its record
            reporter.note(f"figure {name} could not be drawn: {type(exc).__name__}: {exc}")
    return saved


_WARNED: set[tuple[str, tuple[str, ...]]] = set()  # (folder, files) already warned about in this process


class FinishedRecords:
    """The finished records in an output folder, by their identity (the key of their deployed stage)."""

    def __init__(self, out: Path) -> None:
        """Files of ``out`` that are not readable records (a newer schema, missing fields, bad JSON) are not
        reused: they are named and counted in one warning (once per folder and process)."""
        self.by_key: dict[str, tuple[Path, Record]] = {}
        report = LoadReport([])
        for record in load_records(sorted(out.glob("*.json")), report=report) if out.exists() else []:
            if record.get("run_key"):
                self.by_key[record["run_key"]] = (Path(record["_path"]), record)
        key = (str(out), tuple(report.skipped))
        if report.skipped and key not in _WARNED:
            _WARNED.add(key)
            warn(f"{report.text()}; they are not reused, their runs run again")

    def reusable(self, key: str | None, run: PreparedRun) -> tuple[Path, Record] | None:
        """The record of deployed stage ``key`` when it holds every ``--eval-noise``/``--eval-distort``
        accuracy asked for (a record without them is measured again: its stages come from the cache)."""
        found = self.by_key.get(key) if key else None
        if found is None:
            return None
        measured = (found[1].get("metrics") or {}).get("top1_distorted") or {}
        return found if all(d.name in measured for d in run.request.eval_distortions) else None
