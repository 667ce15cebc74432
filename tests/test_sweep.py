"""Sweeps on executors: the same records as one process, every shared stage trained once, failed jobs
retried or reported, a restarted sweep trains only what did not finish (issue 12)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from test_shared_cache import shared_cache

METHODS = ["--methods", "kd,rkd", "--teacher", "resnet8"]  # both need the baseline of resnet8: shared per seed
TINY = [
    "--arch",
    "resnet8",
    "--dataset",
    "cifar10-mini",
    "--recipe",
    "smoke",
    "--train-subset",
    "320",
    "--test-subset",
    "100",
    "--device",
    "cpu",
    "--no-latency",
    "--threads",
    "1",
    "--quiet",
]
TIMING = ("images_per_s", "train_seconds")


def bench_run(tmp_path: Path, name: str, cache_dir: Path, *extra: str, epochs: int = 1) -> Path:
    """`bench run` in this process into ``tmp_path/name`` with a fresh artifact store; returns --out."""
    (tmp_path / name).mkdir()
    cache = shared_cache(tmp_path / name, cache_dir)
    out = tmp_path / name / "runs"
    argv = [
        "run",
        *METHODS,
        *TINY,
        "--seeds",
        "0,1",
        "--epochs",
        str(epochs),
        "--cache-dir",
        str(cache),
        "--out",
        str(out),
        *extra,
    ]
    assert main(argv) == 0
    return out


def records(out: Path) -> dict[tuple[str, int], dict]:
    found = {}
    for path in out.glob("*.json"):
        record = json.loads(path.read_text())
        found[(record["method"]["name"], record["seed"])] = record
    return found


def comparable(record: dict) -> dict:
    """What must not depend on where the stages were trained: identity, metrics, curves, stage lineage."""
    return {
        "run_key": record["run_key"],
        "metrics": record["metrics"],
        "curves": [{k: v for k, v in row.items() if k not in TIMING} for row in record["curves"]],
        "stages": {
            label: {k: e[k] for k in ("artifact", "digest", "origin", "epochs", "needs")}
            for label, e in record["stages"].items()
        },
    }


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[tuple[str, int], dict]:
    """The reference: the default `bench run` (one process, no executor)."""
    return records(bench_run(tmp_path_factory.mktemp("in-process"), "runs", cache_dir))


def assert_same_as_in_process(out: Path, reference: dict[tuple[str, int], dict], executor: str) -> None:
    found = records(out)
    assert sorted(found) == sorted(reference) == [(m, s) for m in ("baseline", "kd", "rkd") for s in (0, 1)]
    for key, record in found.items():
        assert record["execution"]["executor"] == executor
        assert comparable(record) == comparable(reference[key]), key  # metrics bit-identical on CPU
    for seed in (0, 1):  # the shared baseline: trained once (by one job), shared by kd and rkd and its own row
        origins = [r["stages"]["baseline[resnet8]"]["origin"] for (m, s), r in found.items() if s == seed]
        assert sorted(origins) == ["shared", "shared", "trained"], origins


def test_local_workers_give_the_records_of_one_process(tmp_path: Path, cache_dir: Path, in_process) -> None:
    out = bench_run(tmp_path, "local", cache_dir, "--workers", "2")
    assert_same_as_in_process(out, in_process, "local")
    assert records(out)[("kd", 0)]["execution"]["workers"] == 2
    assert_logged_from_the_jobs(out)


def assert_logged_from_the_jobs(out: Path) -> None:
    """The loggers run on the driver: each record's jsonl log holds the epochs of the stages trained for it
    (origin 'trained'; a stage another run of the sweep trained is 'shared' and logged there), sent from the
    stored histories when the run ended (``replayed``); each trained stage is logged once."""
    from plugins.loggers.jsonl import read_jsonl

    logged_stages = []
    for path in out.glob("*.json"):
        record = json.loads(path.read_text())
        epochs = [line for line in read_jsonl(out / "logs" / f"{path.stem}.jsonl") if line["event"] == "epoch"]
        assert all(line.get("replayed") for line in epochs), path.name
        trained = {label: entry for label, entry in record["stages"].items() if entry["origin"] == "trained"}
        assert len(epochs) == sum(entry["epochs"] for entry in trained.values()), path.name
        logged = {line["stage"] for line in epochs}
        assert len(logged) == len(trained), (path.name, logged, sorted(trained))
        logged_stages += [(record["seed"], stage) for stage in logged]
        deployed = [label for label in record["stages"]][-1]
        if deployed in trained:  # the deployed stage's logged epochs are its curves
            shown = [
                line["test_acc"]
                for line in epochs  # logged as the progress lines name it
                if line["stage"] in (deployed, f"{record['method']['name']}/{deployed}")
            ]
            assert shown == [row["test_acc"] for row in record["curves"]], path.name
    assert len(logged_stages) == len(set(logged_stages))  # a shared stage is logged by one record only


def test_ray_executor_gives_the_records_of_one_process(tmp_path: Path, cache_dir: Path, in_process) -> None:
    pytest.importorskip("ray")
    out = bench_run(tmp_path, "ray", cache_dir, "--executor", "ray", "--workers", "2")
    assert_same_as_in_process(out, in_process, "ray")


def test_slurm_executor_through_submitit_local_mode(tmp_path: Path, cache_dir: Path, in_process) -> None:
    pytest.importorskip("submitit")
    out = bench_run(tmp_path, "slurm", cache_dir, "--executor", "slurm", "--slurm-local", "--workers", "2")
    assert_same_as_in_process(out, in_process, "slurm")


def test_missing_extra_is_one_line(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    argv = ["run", *METHODS, *TINY, "--executor", "ray", "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install -e ".[ray]"' in err, err


def wait_for(condition, what: str, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def baseline_key(cache: Path, seed: int) -> str:
    """The key of the baseline of resnet8 for ``seed`` (a dry resolution, as the sweep's graph does)."""
    from harness.core.progress import Reporter
    from harness.methods.shared import baseline_stage
    from harness.plugins.manager import load_plugins
    from harness.cli import build_parser
    from harness.cli.args import request_from_args
    from harness.run.prepare import prepare
    from harness.train.executor import StageRunner

    args = build_parser().parse_args(["run", *METHODS, *TINY, "--epochs", "4", "--cache-dir", str(cache)])
    run = prepare(
        request_from_args(args, methods=args.methods, arch=args.arch, teacher=args.teacher, teacher_checkpoint=None),
        load_plugins(warn=False),
        Reporter(),
    )
    key = StageRunner(run.env(seed, Reporter()), run.store, dry=True).resolve(baseline_stage("resnet8")).key
    assert key is not None
    return key


def test_killed_worker_then_restart_trains_only_unfinished_stages(tmp_path: Path, cache_dir: Path) -> None:
    """A worker is SIGKILLed in the middle of seed 0's baseline (no retries): seed 1 finishes, seed 0's methods
    get failed records. The restarted sweep (--resume) trains only seed 0's stages, the baseline from its
    checkpoint; nothing of seed 1 is trained again."""
    cache = shared_cache(tmp_path, cache_dir)
    argv = [
        *METHODS,
        *[a for a in TINY if a != "--quiet"],
        "--seeds",
        "0,1",
        "--epochs",
        "4",
        "--cache-dir",
        str(cache),
        "--out",
        str(tmp_path / "runs"),
        "--workers",
        "2",
    ]
    log = tmp_path / "first.log"
    with log.open("w") as err:
        first = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", *argv, "--retries", "0"], stdout=subprocess.DEVNULL, stderr=err
        )
    started = re.compile(r"job baseline\[resnet8\] seed 0: started on worker \d+ \(pid (\d+)\)")
    wait_for(lambda: started.search(log.read_text()), "seed 0's baseline job to start")
    pid = int(started.search(log.read_text()).group(1))
    checkpoint = cache / "artifacts" / "baseline" / f"{baseline_key(cache, seed=0)}.ckpt"
    wait_for(checkpoint.exists, "seed 0's baseline to finish an epoch")
    os.kill(pid, signal.SIGKILL)
    assert first.wait(timeout=600) == 1, log.read_text()
    text = log.read_text()
    assert "died (killed by SIGKILL)" in text and "not run: it needs baseline[resnet8] seed 0" in text, text
    assert checkpoint.exists() and not checkpoint.with_suffix(".pt").exists()
    finished = {p.stem for p in (cache / "artifacts").rglob("*.pt")}
    assert len(finished) == 3  # seed 1: baseline, kd, rkd
    before = records(tmp_path / "runs")
    assert sorted(before) == [(m, 1) for m in ("baseline", "kd", "rkd")]

    again = subprocess.run(
        [sys.executable, "-m", "harness", "run", *argv, "--resume"], capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr
    found = records(tmp_path / "runs")
    assert len(found) == 6 and not list((tmp_path / "runs" / "failed").glob("*.json"))
    assert all(found[key] == record for key, record in before.items())  # seed 1: its records reused as they were
    assert "sweep: 3 stage job(s) to train on local" in again.stderr  # seed 0: baseline, kd, rkd
    trained = {
        e["artifact"]
        for (_, seed), r in found.items()
        if seed == 0
        for e in r["stages"].values()
        if e["origin"] == "trained"
    }
    assert trained == {p.stem for p in (cache / "artifacts").rglob("*.pt")} - finished  # only what had not finished
    seed0 = found[("kd", 0)]["stages"]["baseline[resnet8]"]
    assert seed0["artifact"] == checkpoint.stem and seed0["resumed_from_epoch"] >= 1  # continued, not restarted


def prepared_tiny(tmp_path: Path, cache_dir: Path, **overrides):
    """A prepared (validated, nothing trained) tiny run with a fresh artifact store."""
    from conftest import tiny_request

    from harness.core.progress import Reporter
    from harness.plugins.manager import load_plugins
    from harness.run.prepare import prepare

    request = tiny_request(shared_cache(tmp_path, cache_dir), tmp_path / "runs", **overrides)
    return prepare(request, load_plugins(warn=False), Reporter())


def test_jobs_train_with_the_engine_the_driver_resolved(tmp_path: Path, cache_dir: Path) -> None:
    """Stage keys hold the engine (device type, amp, channels_last): a worker that resolved --device auto (or
    the amp default) on its own (a GPU node, the driver on a login node without one) would train stages under
    keys the driver never looks up, and every record would say 'its job failed'. Jobs carry the driver's."""
    from harness.run.sweep.graph import build_graph

    run = prepared_tiny(tmp_path, cache_dir, device="auto", amp=None, channels_last=None)
    graph = build_graph([run])
    assert graph.jobs
    for job in graph.jobs.values():
        request = job.spec.request
        assert (request.device, request.amp, request.channels_last) == (str(run.device), run.amp, run.channels_last)


def test_a_record_without_an_asked_distortion_keeps_its_stages_in_the_graph(tmp_path: Path, cache_dir: Path) -> None:
    """A record that lacks an --eval-noise accuracy is measured again (execute), so its stages must come from
    the store or from jobs of this sweep: the graph may skip only records that execute reuses."""
    from harness.core.progress import Reporter
    from harness.data.distortions import parse_distortion
    from harness.methods.shared import baseline_stage
    from harness.run.sweep.graph import build_graph
    from harness.train.executor import StageRunner

    run = prepared_tiny(tmp_path, cache_dir, reuse_records=True, eval_distortions=[parse_distortion("noise:0.1")])
    key = StageRunner(run.env(0, Reporter()), run.store, dry=True).resolve(baseline_stage("resnet8")).key
    out = run.request.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "old.json").write_text(json.dumps({"run_key": key, "status": "ok", "metrics": {"top1_distorted": {}}}))
    assert [job.id for job in build_graph([run]).todo()] == [key]  # not in the store: its job trains it


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--per-gpu", "0", "--executor", "ray"], "--per-gpu"),
        (["--per-gpu", "2", "--device", "cuda:1"], "--per-gpu"),
        (["--dry-run", "--throughput", "-100"], "--throughput"),
        (["--dry-run", "--throughput", "0"], "--throughput"),
    ],
)
def test_bad_executor_options_are_one_line_usage_errors(
    capsys, tmp_path: Path, cache_dir: Path, extra: list[str], says: str
) -> None:
    argv = [
        "run",
        *METHODS,
        *TINY,
        "--out",
        str(tmp_path / "o"),
        "--cache-dir",
        str(shared_cache(tmp_path, cache_dir)),
        *extra,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and says in err, err


def test_a_worker_whose_job_failed_is_not_given_the_next_job(tmp_path: Path, cache_dir: Path) -> None:
    """A job can fail leaving its process unusable (a sticky CUDA error: every later CUDA call in that process
    fails): the local pool replaces the worker, so that the retry and later jobs start in a fresh process."""
    from dataclasses import replace

    from conftest import tiny_request

    from harness.run.sweep.backend import JobSpec
    from harness.run.sweep.backend import ExecutorOptions
    from plugins.executors.local import LocalPool

    spec = JobSpec(tiny_request(shared_cache(tmp_path, cache_dir), tmp_path / "runs"), 0, "no-such-method", 0, "broken")
    pool = LocalPool(ExecutorOptions(workers=1, threads=1))
    try:
        first = pool.submit(spec)
        ((_, error),) = pool.wait([first])
        assert isinstance(error, str), error
        second = pool.submit(replace(spec, resume=True))
        ((_, again),) = pool.wait([second])
        assert isinstance(again, str), again
        assert second.process.pid != first.process.pid
    finally:
        pool.close()
