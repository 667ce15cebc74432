"""Metrics loggers (--log): every epoch of every stage and the record reach them, read back with the real
libraries; the jsonl log is always written, also by a killed run; a failing or stuck logger never costs the
run its record; an unknown name or a missing extra is one line before training."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import REPO, kill_at, run_tiny
from harness.api import EpochRow, Logger, RunContext, RunResult, hookimpl
from harness.core.errors import UsageError
from harness.core.progress import Reporter
from harness.plugins.manager import load_plugins
from harness.run import runlog
from harness.run.loggers import LoggerSet
from logger_readers import mlflow_runs, tensorboard_scalars, trackio_logs, wandb_run
from plugins.loggers.jsonl import read_jsonl

LIBRARIES = ("tensorboard", "mlflow", "wandb", "trackio")
INSTALLED = [name for name in LIBRARIES if importlib.util.find_spec(name) is not None]
RUN = [
    "run",
    "--methods",
    "kd",
    "--teacher",
    "resnet14",
    "--arch",
    "resnet8",
    "--dataset",
    "cifar10-mini",
    "--recipe",
    "smoke",
    "--epochs",
    "2",
    "--train-subset",
    "320",
    "--test-subset",
    "100",
    "--device",
    "cpu",
    "--no-latency",
    "--quiet",
]


TAGS = {"baseline[resnet14]": "baseline-resnet14", "kd/train": "kd-train"}  # stage label -> metric prefix


def needs(library: str):
    return pytest.mark.skipif(
        library not in INSTALLED,
        reason=f"{library} is not installed (the optional logger extra: pip install 'encodenet-bench[{library}]')",
    )


def bench(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process (the loggers' stores are chosen by environment variables read at import)."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=900
    )


# ---- one run with every installed logger, read back with each library --------------------------------


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict:
    """A KD run logged by every installed logger: its teacher (resnet14) and student stages train in it, two
    epochs each (the shared baseline of resnet8 is its own entry and record)."""
    root = tmp_path_factory.mktemp("logged")
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "TRACKIO_DIR": str(root / "trackio"),
        "WANDB_CACHE_DIR": str(root / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(root / "wandb-config"),
    }
    args = [*RUN, "--cache-dir", str(cache_dir), "--out", str(root / "out"), "--retrain"]
    if INSTALLED:
        args += ["--log", ",".join(INSTALLED)]
    done = bench(args, root, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    (record_file,) = (root / "out").glob("*__kd__*.json")
    record = json.loads(record_file.read_text())
    lines = read_jsonl(root / "out" / "logs" / f"{record_file.stem}.jsonl")
    epochs = [line for line in lines if line["event"] == "epoch"]
    return {
        "root": root,
        "out": root / "out",
        "record": record,
        "record_file": record_file,
        "lines": lines,
        "name": record_file.stem.rsplit("__", 1)[0],
        "epochs": epochs,
        "stderr": done.stderr,
        "stdout": done.stdout,
    }


def test_jsonl_holds_every_epoch_of_every_stage_and_the_record(logged: dict) -> None:
    record, lines, epochs = logged["record"], logged["lines"], logged["epochs"]
    assert [line["event"] for line in lines] == ["start"] + ["epoch"] * 4 + ["end"]
    assert {(e["stage"], e["epoch"]) for e in epochs} == {
        ("baseline[resnet14]", 1),
        ("baseline[resnet14]", 2),
        ("kd/train", 1),
        ("kd/train", 2),
    }
    assert all(
        e["method"] == "kd" and e["arch"] == "resnet8" and e["dataset"] == "cifar10-mini" and e["seed"] == 0
        for e in epochs
    )
    student = [e for e in epochs if e["stage"] == "kd/train"]
    assert [e["test_acc"] for e in student] == [row["test_acc"] for row in record["curves"]]
    teacher = [e for e in epochs if e["stage"] == "baseline[resnet14]"]
    assert teacher[-1]["test_acc"] == record["teacher"]["test_acc"]
    end = lines[-1]
    assert end["status"] == "ok" and end["record"] == str(logged["record_file"])
    assert end["metrics"]["top1_last"] == record["metrics"]["top1_last"] and end["run_key"] == record["run_key"]
    assert not list((logged["out"] / "logs").glob("*__2*-*.jsonl"))  # the running name was renamed after the record
    assert "Trackio" not in logged["stdout"]  # no logger writes to bench's stdout


@needs("tensorboard")
def test_tensorboard_event_files_read_back(logged: dict) -> None:
    (logdir,) = (logged["out"] / "tensorboard").glob(f"{logged['name']}__*")
    scalars = tensorboard_scalars(logdir)
    for e in logged["epochs"]:
        tag = TAGS[e["stage"]]
        assert scalars[f"{tag}/test_acc"][e["epoch"]] == pytest.approx(e["test_acc"], rel=1e-6)
        assert scalars[f"{tag}/train_loss"][e["epoch"]] == pytest.approx(e["train_loss"], rel=1e-6)
    assert scalars["final/top1_last"][0] == pytest.approx(logged["record"]["metrics"]["top1_last"], rel=1e-6)


@needs("mlflow")
def test_mlflow_store_read_back_with_its_client(logged: dict) -> None:
    runs = mlflow_runs(f"sqlite:///{logged['root']}/mlflow.db")
    assert list(runs) == [logged["name"]]
    run = runs[logged["name"]]
    assert run["status"] == "FINISHED"
    assert run["params"]["method"] == "kd" and run["params"]["teacher"] == "resnet14" and run["params"]["seed"] == "0"
    assert run["params"]["recipe.epochs"] == "2"
    for e in logged["epochs"]:
        tag = TAGS[e["stage"]]
        assert run["metrics"][f"{tag}/test_acc"][e["epoch"]] == pytest.approx(e["test_acc"])
    assert run["metrics"]["final/top1_last"][0] == pytest.approx(logged["record"]["metrics"]["top1_last"])
    assert run["tags"]["bench.record"] == str(logged["record_file"])
    assert run["tags"]["bench.run_key"] == logged["record"]["run_key"]


@needs("wandb")
def test_wandb_offline_run_files_read_back(logged: dict) -> None:
    runs = [wandb_run(p) for p in (logged["out"] / "wandb").glob("offline-run-*/run-*.wandb")]
    (run,) = [r for r in runs if r["name"] == logged["name"]]
    assert len(runs) == 1 and run["exit_code"] == 0
    assert run["config"]["method"] == "kd" and run["config"]["recipe.epochs"] == 2
    for e in logged["epochs"]:
        tag = TAGS[e["stage"]]
        (row,) = [r for r in run["history"] if r.get(f"{tag}/epoch") == e["epoch"]]
        assert row[f"{tag}/test_acc"] == pytest.approx(e["test_acc"])
    assert run["summary"]["final/top1_last"] == pytest.approx(logged["record"]["metrics"]["top1_last"])
    assert not list((logged["out"] / "wandb").glob("run-*"))  # offline: nothing but the offline run folder


@needs("trackio")
def test_trackio_local_store_read_back(logged: dict) -> None:
    logs = trackio_logs(logged["root"] / "trackio")
    assert list(logs) == [logged["name"]]
    rows = logs[logged["name"]]
    for e in logged["epochs"]:
        tag = TAGS[e["stage"]]
        (row,) = [r for r in rows if r.get(f"{tag}/epoch") == e["epoch"]]
        assert row[f"{tag}/test_acc"] == pytest.approx(e["test_acc"]) and row["step"] == e["step"]
    (final,) = [r for r in rows if "final/top1_last" in r]
    assert final["final/top1_last"] == pytest.approx(logged["record"]["metrics"]["top1_last"])


# ---- a killed run keeps its curve ----------------------------------------------------------------------


def test_a_killed_run_still_has_its_curve(tmp_path: Path, cache_dir: Path) -> None:
    args = [
        *RUN[:1],
        "--methods",
        "baseline",
        *RUN[5:],
        "--cache-dir",
        str(cache_dir),
        "--out",
        str(tmp_path / "out"),
        "--retrain",
    ]
    done = bench(args, tmp_path, **kill_at("2:1", str(REPO)))  # SIGKILL at epoch 2, batch 1
    assert done.returncode == -9, done.stderr[-2000:]
    assert not list((tmp_path / "out").glob("*.json"))  # no record
    (log,) = (tmp_path / "out" / "logs").glob("*.jsonl")  # under its running name
    lines = read_jsonl(log)
    assert [(line["event"], line.get("epoch")) for line in lines] == [("start", None), ("epoch", 1)]
    assert lines[1]["stage"] == "baseline[resnet8]" and "test_acc" in lines[1]


# ---- failing, stuck and unknown loggers -----------------------------------------------------------------


class Boom(Logger):
    def log_epoch(self, row: EpochRow) -> None:
        raise RuntimeError("the tracking server is down")


class BoomAtStart(Logger):
    def start_run(self, run: RunContext) -> None:
        raise ConnectionError("no route to host\nsecond line")


STUCK = threading.Event()
CALLED_FROM: list[str] = []


class Stuck(Logger):
    def log_epoch(self, row: EpochRow) -> None:
        CALLED_FROM.append(threading.current_thread().name)
        STUCK.wait(30)


class TestLoggers:
    @staticmethod
    @hookimpl
    def bench_register_loggers(register):
        register("boom", Boom)
        register("boom-at-start", BoomAtStart)
        register("stuck", Stuck)


def test_a_logger_that_raises_is_reported_once_and_the_run_finishes(capsys, tmp_path: Path, cache_dir: Path) -> None:
    plugins = load_plugins(entry_points=False, extra=[("test-loggers", TestLoggers)], warn=False)
    outcome = run_tiny(
        cache_dir,
        tmp_path,
        plugins=plugins,
        methods=["baseline", "se"],
        loggers=["boom", "boom-at-start"],
        overrides={"epochs": 2, "batch_size": 64},
        retrain=True,
    )
    assert len(outcome.records) == 2 and all(p.exists() for p in outcome.paths)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: warning:")]
    assert sorted(warnings) == [
        "bench: warning: logger 'boom' failed in log_epoch (RuntimeError: the tracking server is down); it is off "
        "from now on; training goes on",
        "bench: warning: logger 'boom-at-start' failed in start_run (ConnectionError: no route to host); it is off "
        "from now on; training goes on",
    ]
    for path in outcome.paths:  # the other loggers went on
        lines = read_jsonl(tmp_path / "logs" / f"{path.stem}.jsonl")
        assert [line["event"] for line in lines] == ["start", "epoch", "epoch", "end"]


def test_a_stuck_logger_never_holds_the_training(capsys, tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(runlog, "DRAIN_S", 0.5)
    plugins = load_plugins(entry_points=False, extra=[("test-loggers", TestLoggers)], warn=False)
    STUCK.clear()
    CALLED_FROM.clear()
    try:
        outcome = run_tiny(
            cache_dir,
            tmp_path,
            plugins=plugins,
            loggers=["stuck"],
            overrides={"epochs": 2, "batch_size": 64},
            retrain=True,
        )
    finally:
        STUCK.set()
    (record,) = outcome.records
    assert len(record["curves"]) == 2  # both epochs trained while the logger was stuck in the first
    assert CALLED_FROM == ["bench-loggers"]  # loggers run on their own thread
    err = capsys.readouterr().err
    assert (
        "bench: warning: the loggers were still writing after 0 s" in err
        or "bench: warning: the loggers were still writing after 1 s" in err
    )


def test_unknown_logger_is_one_line_before_training(capsys, tmp_path: Path, cache_dir: Path) -> None:
    from harness.cli import main

    args = [*RUN, "--cache-dir", str(cache_dir), "--out", str(tmp_path / "out"), "--log", "tensorbord"]
    assert main(args) == 2
    err = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.strip() and not line.startswith("bench: warning: plugin ")
    ]  # an installed third-party plugin may warn
    assert len(err) == 1 and err[0].startswith("bench: error: unknown logger 'tensorbord'. Did you mean 'tensorboard'?")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.json*"))


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_missing_extra_is_named_before_training(library: str, tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    from conftest import tiny_request
    from harness.run.prepare import prepare

    monkeypatch.setitem(sys.modules, library, None)  # as if it were not installed: importing it fails
    with pytest.raises(UsageError) as info:
        prepare(tiny_request(cache_dir, tmp_path, loggers=[library]), load_plugins(warn=False), Reporter())
    assert str(info.value).startswith(f'--log {library} needs {library}: pip install "encodenet-bench[{library}]"')


def test_epochs_not_trained_here_are_replayed_once_at_the_end() -> None:
    """A sweep's stages (trained by its workers) and the epochs before a --resume reach the loggers from the
    stage's history when the run ends; epochs seen live are not sent twice."""
    got: list[tuple[str, int, bool]] = []
    results: list[RunResult] = []

    class Recorder(Logger):
        def log_epoch(self, row: EpochRow) -> None:
            got.append((row.stage, row.epoch, row.replayed))

        def finish_run(self, result: RunResult) -> None:
            results.append(result)

    logs = runlog.RunLogs(Reporter(), LoggerSet((("rec", Recorder),)))
    logs.begin(
        runlog.run_context(
            name="n",
            method={"name": "kd", "options": {}},
            arch="a",
            dataset="d",
            seed=0,
            recipe={"name": "smoke"},
            teacher=None,
            out=Path("out"),
        )
    )
    logs.start_stage("kd/train", 3, 10, completed=1)  # resumed after epoch 1
    history = [{"epoch": 1, "test_acc": 10.0}, {"epoch": 2, "test_acc": 20.0}, {"epoch": 3, "test_acc": 30.0}]
    for row in history[1:]:
        logs.end_epoch({"lr": 0.1, "train_loss": 1.0, "train_acc": 5.0, "images_per_s": 1.0, **row})
    teacher = [{"epoch": 1, "test_acc": 50.0}]  # trained by a sweep's worker
    logs.end(
        {"status": "ok", "metrics": {"top1_last": 30.0}},
        Path("out/r.json"),
        [("baseline[a]", teacher), ("kd/train", history)],
    )
    logs.close()
    assert got == [("kd/train", 2, False), ("kd/train", 3, False), ("baseline[a]", 1, True), ("kd/train", 1, True)]
    assert results[0].metrics == {"top1_last": 30.0}


def test_run_names_carry_non_default_options(tmp_path: Path, cache_dir: Path) -> None:
    """Two KD temperatures are two run names (TensorBoard folders, MLflow runs), not one name and two
    timestamps (issue 32); a default value adds nothing."""
    from conftest import tiny_request
    from harness.plugins.manager import load_plugins
    from harness.run.prepare import prepare
    from harness.run.recording import record_name

    plugins = load_plugins(warn=False)
    names = {}
    for opts in ([], ["kd.temperature=2"], ["kd.temperature=8"], ["kd.temperature=2", "kd.kd_weight=0.5"]):
        run = prepare(
            tiny_request(cache_dir, tmp_path, methods=["kd"], teacher="resnet14", options=opts),
            plugins,
            Reporter(),
            need_data=False,
        )
        names[tuple(opts)] = record_name(run, run.methods[0], run.env(0, Reporter()))
    default = run.methods[0].options["temperature"].default
    assert names[()] == "cifar10-mini__resnet8__kd__smoke__seed0"
    assert names[("kd.temperature=2",)] == "cifar10-mini__resnet8__kd+temperature=2.0__smoke__seed0" != names[()]
    assert names[("kd.temperature=8",)] == "cifar10-mini__resnet8__kd+temperature=8.0__smoke__seed0"
    assert "+kd_weight=0.5+temperature=2.0__" in names[("kd.temperature=2", "kd.kd_weight=0.5")]
    run = prepare(
        tiny_request(cache_dir, tmp_path, methods=["kd"], teacher="resnet14", options=[f"kd.temperature={default}"]),
        plugins,
        Reporter(),
        need_data=False,
    )
    assert record_name(run, run.methods[0], run.env(0, Reporter())) == names[()]
