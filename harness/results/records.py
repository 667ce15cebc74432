"""Result records: one JSON file per (method, arch, dataset, seed) with everything needed to compare it.

This module owns the record schema (:class:`Record` and its parts, version :data:`SCHEMA`): the run layer
writes records of this type (:func:`write_record`) and every reader (tables, plots, checks, reproductions)
reads them through :func:`load_records` / :func:`read_record`, which migrate older records with one
function (:func:`migrate`). The numbers tables aggregate over seeds are declared once, in :data:`MEASURES`:
a new metric is measured in :func:`harness.run.measure.measure` and declared here, and every table, export
and check picks it up.

Schema history: 1 (until 0.1): ``engine`` and ``protocol`` optional (27 published records lack ``engine``;
the oldest lack ``status`` and ``macs``). 2: ``engine`` and ``protocol`` always written; a record of schema 1
is migrated on read (engine derived from ``config`` and ``device``, with ``version`` None so that such records
are never merged with records of a versioned engine). Optional since 2 (no migration: a record without it
says nothing of it): ``study``, the study file a run was declared in (:class:`StudyEntry`); every stage's
``curves`` under ``stages``; the platform fields of ``device`` (``cpu``, ``isa``, ``cuda``, ``cudnn``, ``gpu``);
``platform``, the platform that computed the record's stages (each stage's under ``stages``), which
:mod:`harness.results.fingerprint` reads.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, TypedDict, cast

import torch

import harness
from harness.core.errors import UsageError
from harness.core.io import atomic_write_json
from harness.data.datasets import display_name

SCHEMA = 2
STATUSES = ("ok", "failed")


class MethodEntry(TypedDict, total=False):
    name: str
    options: dict[str, Any]
    plugin: str
    defaults: dict[str, Any]


class DatasetEntry(TypedDict, total=False):
    """``ImageDataset.describe()``: name, provenance, fingerprint, sizes, normalisation, subset notes."""

    name: str
    source: str
    fingerprint: str
    num_classes: int
    input: list[int]
    train: int
    test: int
    val: int
    mean: list[float]
    std: list[float]
    location: str
    train_subset: int
    test_subset: int
    val_split: float
    split_seed: int
    missing_test_classes: list[str]


class EngineEntry(TypedDict, total=False):
    version: int | None
    device: str | None
    amp: bool
    channels_last: bool
    compile: str  # the torch.compile mode; absent for an eager run
    numerics: str  # the pinning numerics profile; absent for a native run


class ProtocolEntry(TypedDict, total=False):
    select: str  # which epoch's weights were deployed: last, val or test (always written)
    tta: str  # test-time augmentation of the last epoch's evaluation: written only where it is on (--tta)


class TeacherEntry(TypedDict, total=False):
    arch: str
    artifact: str | None
    weights_digest: str | None
    test_acc: float | None
    params: int
    stage: str
    checkpoint: str | None
    trained_in_this_run: bool
    default: bool  # the student architecture's default teacher (no --teacher given)
    default_source: str | None  # where that pair comes from
    source: (
        dict[str, Any] | None
    )  # a shared teacher's origin: kind (bundle, url, hub, imported), source, sha256, artifact


class StudyEntry(TypedDict):
    """The study file a run was declared in (``bench run STUDY.toml``): presentation metadata, in no key."""

    name: str
    file: str  # the file's absolute path as read, or ``bundled:<name>``
    digest: str  # of what the resolved study runs (harness.cli.study.resolved.digest)
    resolved: str  # its resolved copy, beside the record


class StageEntry(TypedDict, total=False):
    stage: str
    arch: str | None
    artifact: str | None
    digest: str | None
    origin: str
    trained_in_this_process: bool
    reused: bool
    seconds: float
    epochs: int
    resumed_from_epoch: int
    needs: dict[str, str | None]
    platform: dict[str, Any] | None  # the platform that computed it (kept when it is reused), None: not known
    curves: list[dict[str, Any]]  # the stage's per-epoch history (the deployed stage's is also the record's ``curves``)


class Metrics(TypedDict, total=False):
    top1_last: float | None
    top1_best: float | None
    best_epoch: int | None
    top1_selected: float
    val_acc_selected: float | None
    params_deployed: int
    params_extra: int
    top1_distorted: dict[str, float]
    macs: int
    flops: int
    latency_ms: dict[
        str, float
    ]  # batch1 (median ms), batch1_spread (IQR), batch1_repeats; the same for the large batch


class Record(TypedDict, total=False):
    """One record. Every record has the first block of fields; ``status == "ok"`` records have the second
    (``run_key`` is the key of the deployed stage), failed ones the third."""

    schema: int
    status: str
    created: str
    method: MethodEntry
    arch: str
    dataset: DatasetEntry
    seed: int
    recipe: dict[str, Any]
    engine: EngineEntry
    protocol: ProtocolEntry
    config: dict[str, Any]
    versions: dict[str, Any]
    device: dict[str, Any]
    execution: dict[str, Any]
    teacher: TeacherEntry | None
    wall_seconds: float
    study: StudyEntry  # only for runs declared in a study file

    run_key: str
    metrics: Metrics
    curves: list[dict[str, Any]]
    stages: dict[str, StageEntry]
    platform: dict[str, Any]  # the platform its stages were computed on (harness.results.fingerprint.of_stages)
    info: dict[str, Any]
    figures: dict[str, str]

    error: str
    failure_key: str

    _path: str  # where it was read from (set by load_records, never written)


#: Fields every record must have (after migration); ``status == "ok"`` records also need OK_FIELDS.
REQUIRED = ("schema", "status", "method", "arch", "dataset", "seed", "recipe", "engine", "protocol")
OK_FIELDS = ("run_key", "metrics")
#: Fields inside them that every reader uses: ``part -> fields`` (``dataset.name``, ``recipe.epochs``, ...).
NESTED = {"method": ("name",), "dataset": ("name",), "recipe": ("name", "epochs", "batch_size")}
#: The type each field must have where it is present (a record whose ``metrics`` is a list is no record).
TYPES: dict[str, type | tuple[type, ...]] = {
    "status": str,
    "method": dict,
    "arch": str,
    "dataset": dict,
    "seed": int,
    "recipe": dict,
    "engine": dict,
    "protocol": dict,
    "run_key": str,
    "metrics": dict,
    "curves": list,
    "stages": dict,
    "info": dict,
    "teacher": (dict, type(None)),
}
#: metrics that tables and checks read as numbers (or None)
NUMERIC_METRICS = ("top1_last", "top1_best", "top1_selected", "val_acc_selected", "params_deployed", "macs")
#: ``--metric`` -> the top-1 of ``metrics`` it reads (tables, plots, checks)
TOP1 = {"last": "top1_last", "best": "top1_best", "selected": "top1_selected"}


# ---- the numbers tables aggregate over seeds -----------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """A number of a record that tables average over seeds: its name (the table row's attribute and the
    export column), its header, how to read it from a record, and what kind of number it is (``count``:
    parameters; ``ops``: MACs/FLOPs; ``ms``: a latency; ``ratio``: relative to the baseline; ``percent``)."""

    name: str
    header: str
    get: Callable[[Record], float | None]
    kind: str
    description: str
    export: str = ""  # its key in JSON/CSV exports when not ``name``

    @property
    def key(self) -> str:
        return self.export or self.name


def _metric(name: str) -> Callable[[Record], float | None]:
    def get(r: Record) -> float | None:
        metrics: Mapping[str, Any] = r.get("metrics") or {}
        return metrics.get(name)

    return get


def train_compute(record: Record) -> float | None:
    """Training FLOPs relative to the baseline's (``info.compute.flops_relative_to_baseline``); 1.0 for the
    baseline itself, None for a method that does not count its compute."""
    if record["method"].get("name") == "baseline":
        return 1.0
    return ((record.get("info") or {}).get("compute") or {}).get("flops_relative_to_baseline")


MEASURES: tuple[Measure, ...] = (
    Measure("params", "params", _metric("params_deployed"), "count", "parameters of the deployed model"),
    Measure(
        "extra_params",
        "extra params",
        _metric("params_extra"),
        "count",
        "training-time extra parameters (regressors, decoders), not deployed",
    ),
    Measure("macs", "MACs", _metric("macs"), "ops", "multiply-accumulates of one forward pass (batch 1)"),
    Measure("flops", "FLOPs", _metric("flops"), "ops", "FLOPs of one forward pass (2 per multiply-add)"),
    Measure(
        "latency",
        "latency b1 (ms)",
        lambda r: ((r.get("metrics") or {}).get("latency_ms") or {}).get("batch1"),
        "ms",
        "median inference latency at batch 1",
        export="latency_ms_batch1",
    ),
    Measure(
        "teacher_acc",
        "teacher top-1",
        lambda r: (r.get("teacher") or {}).get("test_acc"),
        "percent",
        "the teacher's test top-1",
        export="teacher_top1",
    ),
    Measure(
        "train_compute",
        "train compute (x baseline)",
        train_compute,
        "ratio",
        "training FLOPs of every stage the method trains, baseline included, relative to the baseline's",
        export="train_compute_x_baseline",
    ),
)


# ---- migration and reading -----------------------------------------------------------------------------


class RecordError(UsageError):
    """A file that looks like a record but cannot be read as one (missing fields, newer schema)."""


def migrate(data: Mapping[str, Any], where: str | None = None) -> Record:
    """A record of any known schema, upgraded to :data:`SCHEMA` (a copy; the file is not rewritten); a
    RecordError naming the record for a schema newer than this bench reads (never read as the current one)."""
    return cast(Record, _migrated(data, where))  # its fields are checked by read_record


def _migrated(data: Mapping[str, Any], where: str | None) -> dict[str, Any]:
    record: dict[str, Any] = dict(data)
    schema = record.get("schema")
    if isinstance(schema, int) and schema > SCHEMA:
        where = where or record.get("_path") or "a record"
        raise RecordError(
            f"{where}: record schema {schema} is newer than this bench reads ({SCHEMA}); upgrade encodenet-bench"
        )
    if schema == 1:
        config = record.get("config") or {}
        record.setdefault("status", "ok")
        if not isinstance(record.get("engine"), dict):
            record["engine"] = {
                "version": None,
                "device": (record.get("device") or {}).get("type"),
                "amp": bool(config.get("amp", False)),
                "channels_last": bool(config.get("channels_last", False)),
            }
        if not isinstance(record.get("protocol"), dict):
            record["protocol"] = {"select": config.get("select", "last")}
        record["schema"] = 2
    return record


def read_record(data: Any, where: str) -> Record:
    """``data`` (a parsed JSON object) as a record of the current schema; a RecordError naming ``where`` and
    the problem for a newer schema or a missing field."""
    if not isinstance(data, dict) or not isinstance(data.get("schema"), int):
        raise RecordError(f"{where}: not a bench record (no 'schema' field)")
    record = _migrated(data, where)
    missing = [k for k in REQUIRED if k not in record]
    if record.get("status") == "ok":
        missing += [k for k in OK_FIELDS if k not in record]
    missing += [
        f"{part}.{k}"
        for part, fields in NESTED.items()
        if isinstance(record.get(part), dict)
        for k in fields
        if k not in record[part]
    ]
    if missing:
        raise RecordError(f"{where}: record is missing field(s) {', '.join(missing)}")
    wrong = [
        f"{k} ({type(record[k]).__name__}, not {_type_name(kind)})"
        for k, kind in TYPES.items()
        if k in record and not isinstance(record[k], kind)
    ]
    if record["status"] not in STATUSES:
        wrong.append(f"status {record['status']!r} (not one of {', '.join(STATUSES)})")
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        metrics = {}
    wrong += [
        f"metrics.{k} ({metrics[k]!r}, not a number)"
        for k in NUMERIC_METRICS
        if metrics.get(k) is not None and (isinstance(metrics[k], bool) or not isinstance(metrics[k], (int, float)))
    ]
    if wrong:
        raise RecordError(f"{where}: record has field(s) of the wrong type: {', '.join(wrong)}")
    return cast(Record, record)


def read_record_file(path: Path, where: str | None = None) -> Record:
    """The record in file ``path`` (:func:`read_record`); a RecordError naming ``where`` (default the file)
    for a file that is not readable JSON, a newer schema, a missing field or a field of the wrong type."""
    where = where or str(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{where}: not a readable bench record ({type(exc).__name__}: {str(exc)[:80]})") from None
    return read_record(data, where)


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


@dataclass
class LoadReport:
    """What :func:`load_records` left out and why, so that nothing is dropped without a word."""

    skipped: list[str]  # one line per file: "<file>: <reason>"

    def text(self) -> str:
        return (
            "" if not self.skipped else (f"{len(self.skipped)} file(s) not read as records: " + "; ".join(self.skipped))
        )

    def warn(self) -> None:
        """One ``bench: warning:`` line naming and counting what was left out (nothing when nothing was)."""
        if self.skipped:
            print(f"bench: warning: {self.text()}", file=sys.stderr)


def record_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.json")))
        elif p.exists():
            files.append(p)
        else:
            raise UsageError(f"no such file or folder: {p}")
    return files


def load_records(
    paths: list[Path], *, failed: bool = False, report: LoadReport | None = None, top1: str | None = None
) -> list[Record]:
    """Records from files and folders (searched recursively for ``*.json``), migrated to the current schema.

    JSON files that are not records (no ``schema`` field: other JSON beside the records) are skipped; records
    of a newer schema, with missing fields or fields of the wrong type, files that cannot be read or parsed,
    and, with ``top1`` (a key of :data:`TOP1`), records of successful runs without that top-1 are skipped and
    named in ``report``; without a ``report`` they are named in one warning line here. Records of failed
    runs (``status: failed``, no metrics) are results of nothing: they are left out unless ``failed`` is True
    (``bench table`` counts them)."""
    own = report is None
    report = LoadReport([]) if report is None else report
    records = []
    for f in record_files(paths):
        try:
            data = json.loads(f.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            report.skipped.append(f"{f}: not readable as JSON ({type(exc).__name__}: {str(exc)[:80]})")
            continue
        if not (isinstance(data, dict) and "schema" in data):
            continue
        try:
            record = read_record(data, str(f))
        except RecordError as exc:
            report.skipped.append(str(exc))
            continue
        if record["status"] == "failed" and not failed:
            continue
        if top1 is not None and record["status"] == "ok" and record["metrics"].get(TOP1[top1]) is None:
            report.skipped.append(f"{f}: no {TOP1[top1]} (the top-1 of --metric {top1})")
            continue
        record["_path"] = str(f)
        records.append(record)
    if own:
        report.warn()
    return records


# ---- writing -----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def versions() -> dict[str, Any]:
    import timm
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "harness": harness.__version__,
        "git": git_commit(),
    }


def git_commit() -> str | None:
    """The harness checkout's commit (with ``-dirty`` when it has uncommitted changes) when ``harness`` is
    imported from a git checkout; None for an installed package (also one installed into a checkout's venv)."""
    root = Path(harness.__file__).resolve().parents[1]
    if not (root / ".git").exists():  # a directory in a clone, a file in a worktree
        return None
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return None


def version_line() -> str:
    """``bench --version``: the package version, and the git commit when run from a checkout."""
    commit = git_commit()
    return f"encodenet-bench {harness.__version__}" + (f" (git {commit})" if commit else "")


def device_info(device: torch.device) -> dict[str, Any]:
    """The device and the platform around it (see :mod:`harness.results.fingerprint`, which reads them)."""
    from harness.results.fingerprint import probe

    info: dict[str, Any] = {"type": device.type, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    else:
        info["name"] = platform.processor() or platform.machine()
    return info | probe(device)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60]


FAILED_DIR = "failed"  # records of failed runs, under the output folder: never read as results


def record_path(out: Path, record: Record) -> Path:
    """``<dataset>__<arch>__<method>__<recipe>__seed<N>__<run key>.json``; the dataset part is its short display
    name (``imagefolder-cifar10-jpg``), never a path. A failed run's record (``status: failed``, keyed by its
    ``failure_key``) goes to ``<out>/failed/``."""
    failed = record.get("status") == "failed"
    key = record["failure_key"] if failed else record["run_key"]
    name = record_stem(
        record["dataset"]["name"], record["arch"], record["method"]["name"], record["recipe"]["name"], record["seed"]
    )
    return (out / FAILED_DIR if failed else out) / f"{name}__{key[:8]}.json"


def record_stem(dataset: str, arch: str, method: str, recipe: str, seed: int) -> str:
    """A record's file name without its key (known before the run trains):
    ``<dataset>__<arch>__<method>__<recipe>__seed<N>``."""
    return f"{slug(display_name(dataset))}__{slug(arch)}__{slug(method)}__{slug(recipe)}__seed{seed}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_record(out: Path, record: Record) -> Path:
    """Write ``record`` atomically under ``out`` (see :func:`record_path`); returns its path."""
    path = record_path(out, record)
    atomic_write_json(path, {k: v for k, v in record.items() if not k.startswith("_")})
    return path


def readable_records(paths: list[Path], *, failed: bool = False, metric: str | None = None) -> list[Record]:
    """The records of ``paths`` for a command that reads them (table, check, plot): what is left out (a newer
    schema, missing fields or wrong types, unreadable JSON, no top-1 of ``metric``) is named and counted in
    one warning line; a UsageError (exit 2) when no record is left."""
    report = LoadReport([])
    records = load_records(paths, failed=failed, report=report, top1=metric)
    report.warn()
    if not records:
        left = f"; {len(report.skipped)} file(s) left out, named above" if report.skipped else ""
        raise UsageError(f"no readable result records in {', '.join(map(str, paths))}{left}; run 'bench run' first")
    return records
