"""Executors written naively, as docs/plugins/executor.md's reader might: the harness, not the executor, gives
every job its share of the CPUs (``run_job`` in the worker), and jobs started at once in one process (a
thread-pool executor) still train the numbers they train alone (issue 32)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest

from harness.api import Backend, ExecutorOptions, JobResult, JobSpec, hookimpl, job_threads, run_job
from harness.run.sweep.backend import cpu_count
from harness.testing import bench_with
from test_shared_cache import shared_cache

TINY = [
    "--methods",
    "baseline",
    "--seeds",
    "0,1",
    "--arch",
    "resnet8",
    "--dataset",
    "cifar10-mini",
    "--recipe",
    "smoke",
    "--epochs",
    "1",
    "--train-subset",
    "200",
    "--test-subset",
    "100",
    "--device",
    "cpu",
    "--no-latency",
    "--quiet",
]


class Futures(Backend):
    """What a newcomer writes: a concurrent.futures pool whose jobs call run_job, nothing about threads."""

    pool_class: Any = ThreadPoolExecutor
    results: list[JobResult] = []

    def __init__(self, options: ExecutorOptions) -> None:
        self.capacity = options.workers or 1
        self.pool = self.make_pool()

    def make_pool(self) -> Any:
        return self.pool_class(self.capacity)

    def submit(self, spec: JobSpec) -> Any:
        return self.pool.submit(run_job, spec)

    def wait(self, handles: list[Any]) -> list[tuple[Any, JobResult | str]]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        ended = [
            (f, f.result() if f.exception() is None else f"{type(f.exception()).__name__}: {f.exception()}")
            for f in done
        ]
        type(self).results += [r for _, r in ended if isinstance(r, JobResult)]
        return ended

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class Threads(Futures):
    name = "threads"
    results: list[JobResult] = []


class Spawned(Futures):
    name = "spawned"
    results: list[JobResult] = []

    def make_pool(self) -> Any:
        return ProcessPoolExecutor(self.capacity, mp_context=multiprocessing.get_context("spawn"))


class Naive:
    @hookimpl
    def bench_register_executors(self, register):
        register("threads", Threads, description="a thread pool in the driver")
        register("spawned", Spawned, description="a spawn process pool")


def top1(out: Path) -> dict[int, float]:
    records = [json.loads(p.read_text()) for p in out.glob("*.json")]
    return {r["seed"]: r["metrics"]["top1_last"] for r in records}


def sweep(tmp_path: Path, cache_dir: Path, name: str, *extra: str) -> dict[int, float]:
    (tmp_path / name).mkdir()
    cache = shared_cache(tmp_path / name, cache_dir)
    assert (
        bench_with([Naive()], ["run", *TINY, "--cache-dir", str(cache), "--out", str(tmp_path / name / "runs"), *extra])
        == 0
    )
    return top1(tmp_path / name / "runs")


def fresh_default_threads() -> int:
    """torch's thread count in a new process that sets none."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    code = "import torch; print(torch.get_num_threads())"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout)


def test_a_naive_process_pool_gets_each_job_its_share_of_the_cpus(tmp_path: Path, cache_dir: Path) -> None:
    """Spawned workers that only call run_job train with the CPUs divided among them, not all of them each."""
    share = job_threads(ExecutorOptions(workers=2), 2)
    if fresh_default_threads() == share:
        pytest.skip(f"{cpu_count()} CPU(s): a job's share ({share}) is what torch takes anyway")
    Spawned.results.clear()
    sweep(tmp_path, cache_dir, "spawned", "--executor", "spawned", "--workers", "2")
    assert [r.threads for r in Spawned.results] == [share, share]


def test_jobs_started_at_once_in_one_process_train_as_they_do_alone(tmp_path: Path, cache_dir: Path, capsys) -> None:
    """A thread-pool executor ran two seeds at once in the driver: both drew from torch's one random stream and
    seed 0 recorded another accuracy than it has alone, with exit 0. run_job now runs them one after the other
    and says why once."""
    alone = sweep(tmp_path, cache_dir, "alone")
    Threads.results.clear()
    assert sweep(tmp_path, cache_dir, "threads", "--executor", "threads", "--workers", "2") == alone
    assert len(Threads.results) == 2
    err = capsys.readouterr().err
    assert err.count("two stage jobs were started at once in one process") == 1


def test_a_job_in_the_drivers_process_leaves_its_threads_as_they_were(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from harness.run.sweep import worker

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    torch.set_num_threads(2)
    with worker.job_threads(1):
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "7"


def test_a_worker_applies_the_share_before_torch_is_loaded() -> None:
    """A new worker reads its JobSpec and sets the thread variables before importing torch, so the pools of
    the numerical libraries start at the job's size."""
    code = (
        "import sys, os, pickle\n"
        "from harness.run.sweep import worker\n"
        "spec = pickle.loads(sys.stdin.buffer.read())\n"
        "assert 'torch' not in sys.modules, 'reading a JobSpec imported torch'\n"
        "with worker.job_threads(spec.threads):\n"
        "    import torch\n"
        "    print(os.environ['OMP_NUM_THREADS'], torch.get_num_threads())\n"
    )
    from harness.run.request import RunRequest
    import pickle

    spec = JobSpec(
        RunRequest(methods=["baseline"], arch="resnet8", dataset="cifar10-mini"),
        0,
        "baseline",
        0,
        "baseline seed 0",
        threads=1,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = (
        subprocess.run([sys.executable, "-c", code], input=pickle.dumps(spec), capture_output=True, env=env, check=True)
        .stdout.decode()
        .split()
    )
    assert out == ["1", "1"]


def test_a_profile_that_fixes_the_thread_count_gives_it_to_every_job() -> None:
    """--numerics portable defines its bits at one thread: jobs get that, not a share of the CPUs (--threads
    still decides when given)."""
    from types import SimpleNamespace

    from harness.run.sweep.driver import jobs_threads

    def runs(profile: str | None) -> list[Any]:
        return [SimpleNamespace(request=SimpleNamespace(numerics=profile))]

    assert jobs_threads(runs("portable"), ExecutorOptions(workers=1), 1) == 1
    assert jobs_threads(runs("portable"), ExecutorOptions(workers=1, threads=3), 1) == 3
    assert jobs_threads(runs(None), ExecutorOptions(workers=1), 1) == job_threads(ExecutorOptions(workers=1), 1)
