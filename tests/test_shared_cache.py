"""Processes sharing one cache: each stage trained once (under its lock), no stale checkpoints, truthful records,
also when a process is killed while it holds a stage's lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from conftest import kill_at, run_tiny
from harness.core.identity import weights_digest
from harness.core.progress import Reporter
from harness.plugins.manager import load_plugins
from harness.cli import build_parser
from harness.cli.args import request_from_args
from harness.run.prepare import prepare
from harness.train.artifacts import ArtifactStore
from harness.train.executor import StageRunner

RUN = [
    "run",
    "--methods",
    "baseline",
    "--arch",
    "resnet8",
    "--dataset",
    "cifar10-mini",
    "--recipe",
    "smoke",
    "--epochs",
    "3",
    "--train-subset",
    "320",
    "--test-subset",
    "100",
    "--device",
    "cpu",
    "--no-latency",
    "--threads",
    "1",
]  # not --quiet: the notes say who waited
WAITING = "another run is training this stage; waiting for it"


def shared_cache(tmp_path: Path, cache_dir: Path) -> Path:
    """A fresh artifact store that shares the session's decoded datasets."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache_dir / "datasets").mkdir(parents=True, exist_ok=True)
    (cache / "datasets").symlink_to(cache_dir / "datasets", target_is_directory=True)
    return cache


def start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    with log.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **(env or {})},
        )


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def held_elsewhere(lock: FileLock) -> bool:
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def stage_keys(argv: list[str]) -> list[str]:
    """The key of the deployed stage of each seed of a `bench run` command line (a dry resolution)."""
    args = build_parser().parse_args(argv)
    req = request_from_args(
        args, methods=args.methods, arch=args.arch, teacher=args.teacher, teacher_checkpoint=args.teacher_checkpoint
    )
    run = prepare(req, load_plugins(warn=False), Reporter())
    keys = []
    for seed in req.seeds:
        plan = run.methods[0].plan(run.info(seed))
        keys.append(StageRunner(run.env(seed, Reporter()), run.store, dry=True).resolve(plan.deploy).key)
    return keys


def records(*outs: Path) -> list[dict]:
    found = [json.loads(p.read_text()) for out in outs for p in sorted(out.glob("*.json"))]
    assert all(r["status"] == "ok" and r["metrics"]["top1_last"] is not None for r in found)  # intact
    return found


def trained_once(found: list[dict], cache: Path) -> dict[str, str]:
    """Every stage of the records was trained by exactly one process, and every record has its artifact's
    weights; returns artifact key -> the origins the records give it."""
    origins: dict[str, list[str]] = {}
    for r in found:
        for entry in r["stages"].values():
            origins.setdefault(entry["artifact"], []).append(entry["origin"])
            assert entry["reused"] is (entry["origin"] != "trained")
            saved = torch.load(cache / "artifacts" / entry["stage"] / f"{entry['artifact']}.pt", weights_only=False)
            assert entry["digest"] == weights_digest(saved["objective"])
    for key, seen in origins.items():
        assert seen.count("trained") == 1 and set(seen) <= {"trained", "cache"}, (key, seen)
    assert not list((cache / "artifacts").rglob("*.ckpt"))  # no stale checkpoint
    return {key: ",".join(sorted(seen)) for key, seen in origins.items()}


def test_second_process_waits_for_the_stage_and_reuses_it(tmp_path: Path, cache_dir: Path) -> None:
    cache = shared_cache(tmp_path, cache_dir)
    argv = [*RUN, "--seeds", "1", "--cache-dir", str(cache)]
    (key,) = stage_keys([*argv, "--out", str(tmp_path / "a")])
    held = ArtifactStore(cache / "artifacts").lock("baseline", key)
    held.acquire()  # both processes must wait: whichever gets the lock first trains, the other reuses
    procs = [start([*argv, "--out", str(tmp_path / name)], tmp_path / f"{name}.log") for name in "ab"]
    try:
        wait_for(lambda: all(WAITING in (tmp_path / f"{n}.log").read_text() for n in "ab"), "both to wait")
    finally:
        held.release()
    assert [p.wait(timeout=300) for p in procs] == [0, 0], [(tmp_path / f"{n}.log").read_text() for n in "ab"]
    found = records(tmp_path / "a", tmp_path / "b")
    assert trained_once(found, cache) == {key: "cache,trained"}
    (reuser,) = [r for r in found if r["stages"]["baseline[resnet8]"]["origin"] == "cache"]
    assert reuser["stages"]["baseline[resnet8]"]["trained_in_this_process"] is False


def test_killed_lock_holder_is_taken_over_and_every_stage_trains_once(tmp_path: Path, cache_dir: Path) -> None:
    """A trains seed 1 and is paused while it holds the lock; B comes and waits; A resumes and is SIGKILLed in
    epoch 2; the OS releases A's lock, B resumes seed 1 from A's checkpoint, then trains seed 2; A, restarted with
    --resume beside B, trains nothing twice. Every record is intact; every stage was trained once."""
    cache = shared_cache(tmp_path, cache_dir)
    argv = [*RUN, "--seeds", "1,2", "--cache-dir", str(cache)]
    s1, s2 = stage_keys([*argv, "--out", str(tmp_path / "a")])
    a = start([*argv, "--out", str(tmp_path / "a")], tmp_path / "a.log", env=kill_at("2:3"))
    lock = ArtifactStore(cache / "artifacts").lock("baseline", s1)
    wait_for(Path(lock.lock_file).exists, "A to take seed 1's lock")
    for _ in range(100):  # pause A while it holds the lock, long before its kill point (epoch 2)
        a.send_signal(signal.SIGSTOP)
        if held_elsewhere(lock):
            break
        a.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    else:
        raise AssertionError("A never held seed 1's lock")
    b = start([*argv, "--out", str(tmp_path / "b"), "--resume"], tmp_path / "b.log")
    try:
        wait_for(lambda: WAITING in (tmp_path / "b.log").read_text(), "B to wait for A")
    finally:
        a.send_signal(signal.SIGCONT)
    assert a.wait(timeout=300) == -signal.SIGKILL  # killed at epoch 2, batch 3, with the lock held
    assert not list((tmp_path / "a").glob("*.json"))
    wait_for(lambda: "resumed after epoch 1/3" in (tmp_path / "b.log").read_text(), "B to take seed 1 over")
    again = start([*argv, "--out", str(tmp_path / "a"), "--resume"], tmp_path / "a2.log")
    assert b.wait(timeout=300) == 0, (tmp_path / "b.log").read_text()
    assert again.wait(timeout=300) == 0, (tmp_path / "a2.log").read_text()
    found = records(tmp_path / "a", tmp_path / "b")
    assert len(found) == 4
    origins = trained_once(found, cache)
    print(f"origins per stage over the 4 records: {origins}")  # shown with pytest -s
    assert origins == {s1: "cache,trained", s2: "cache,trained"}
    (b1,) = [r for r in records(tmp_path / "b") if r["seed"] == 1]
    assert b1["stages"]["baseline[resnet8]"]["origin"] == "trained"
    assert b1["stages"]["baseline[resnet8]"]["resumed_from_epoch"] == 1  # A's epoch 1 was not trained again


def test_checkpoint_beside_a_finished_artifact_is_removed(tmp_path: Path, cache_dir: Path) -> None:
    """A run killed while another one finished the stage leaves a checkpoint: the next process to use the
    artifact removes it (under the lock), and loads the artifact."""
    cache = shared_cache(tmp_path, cache_dir)
    first = run_tiny(cache, tmp_path / "a").records[0]["stages"]["baseline[resnet8]"]
    stale = cache / "artifacts" / "baseline" / f"{first['artifact']}.ckpt"
    torch.save({"epoch": 1}, stale)
    again = run_tiny(cache, tmp_path / "b", resume=True).records[0]["stages"]["baseline[resnet8]"]
    assert again["origin"] == "cache" and again["digest"] == first["digest"] and again["resumed_from_epoch"] == 0
    assert not stale.exists()
