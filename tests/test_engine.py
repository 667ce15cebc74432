"""Training engine: determinism, resume after a kill, artifacts trained once and reused, schedules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import kill_at, read_records, run_tiny
from harness.train.engine import lr_factor
from harness.core.recipes import Recipe


def artifact_states(cache: Path) -> dict[str, dict]:
    return {p.name: torch.load(p, weights_only=False)["objective"] for p in (cache / "artifacts").rglob("*.pt")}


def test_same_seed_same_device_same_weights(tmp_path: Path, cache_dir: Path) -> None:
    run_tiny(cache_dir, tmp_path / "a", seeds=[3], retrain=True)
    first = {k: v.clone() for k, v in next(iter(artifact_states_for(cache_dir, seed=3))).items()}
    run_tiny(cache_dir, tmp_path / "b", seeds=[3], retrain=True)
    second = next(iter(artifact_states_for(cache_dir, seed=3)))
    assert first.keys() == second.keys()
    for k in first:
        assert torch.equal(first[k], second[k]), k
    (r1,), (r2,) = read_records(tmp_path / "a"), read_records(tmp_path / "b")
    assert r1["curves"][0]["train_loss"] == r2["curves"][0]["train_loss"]


def artifact_states_for(cache: Path, seed: int):
    for meta in (cache / "artifacts" / "baseline").glob("*.json"):
        ident = json.loads(meta.read_text())["identity"]
        run = ident["run"]
        if run["seed"] == seed and ident["archs"][0]["arch"] == "resnet8" and run["dataset"].get("train_subset") == 320:
            yield torch.load(meta.with_suffix(".pt"), weights_only=False)["objective"]


def test_baseline_trained_once_and_reused_across_invocations(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = run_tiny(cache, tmp_path / "r1")
    assert first.records[0]["stages"]["baseline[resnet8]"]["reused"] is False
    again = run_tiny(cache, tmp_path / "r2")
    stage = again.records[0]["stages"]["baseline[resnet8]"]
    assert stage["reused"] is True and stage["artifact"] == first.records[0]["stages"]["baseline[resnet8]"]["artifact"]
    assert again.records[0]["metrics"]["top1_last"] == first.records[0]["metrics"]["top1_last"]
    # a different budget is a different artifact
    other = run_tiny(cache, tmp_path / "r3", overrides={"epochs": 2, "batch_size": 64})
    assert other.records[0]["stages"]["baseline[resnet8]"]["reused"] is False


def bench(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


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
    "--quiet",
    "--seeds",
    "1",
    "--threads",
    "2",
]


def test_killed_run_resumes_to_identical_metrics(tmp_path: Path, cache_dir: Path) -> None:
    # the same (cached, decoded) dataset for all three invocations, separate artifact stores
    (cache_dir / "datasets").mkdir(parents=True, exist_ok=True)
    for name in ("clean", "killed"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "datasets").symlink_to(cache_dir / "datasets", target_is_directory=True)
    clean = bench([*RUN, "--cache-dir", str(tmp_path / "clean"), "--out", str(tmp_path / "out-clean")])
    assert clean.returncode == 0, clean.stderr
    killed = bench(
        [*RUN, "--cache-dir", str(tmp_path / "killed"), "--out", str(tmp_path / "out-killed")], env=kill_at("2:3")
    )  # SIGKILL in the middle of epoch 2
    assert killed.returncode == -signal.SIGKILL
    assert not list(tmp_path.glob("out-killed/*.json"))  # no record of the killed run
    (ckpt,) = (tmp_path / "killed" / "artifacts" / "baseline").glob("*.ckpt")
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    resumed = bench([*RUN, "--cache-dir", str(tmp_path / "killed"), "--out", str(tmp_path / "out-killed"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    (a,), (b,) = read_records(tmp_path / "out-clean"), read_records(tmp_path / "out-killed")
    assert b["stages"]["baseline[resnet8]"]["resumed_from_epoch"] == 1
    assert a["stages"]["baseline[resnet8]"]["resumed_from_epoch"] == 0
    strip = lambda curves: [
        {k: v for k, v in row.items() if "seconds" not in k and k != "images_per_s"} for row in curves
    ]
    assert strip(a["curves"]) == strip(b["curves"])
    assert a["metrics"]["top1_last"] == b["metrics"]["top1_last"]
    assert a["metrics"]["top1_selected"] == b["metrics"]["top1_selected"]
    sa, sb = artifact_states(tmp_path / "clean"), artifact_states(tmp_path / "killed")
    assert sa.keys() == sb.keys()
    for name in sa:
        for k in sa[name]:
            assert torch.equal(sa[name][k], sb[name][k]), k


def test_multistep_and_cosine_schedules() -> None:
    crd = Recipe("crd", epochs=240, batch_size=64, lr=0.05, weight_decay=5e-4, milestones=(150, 180, 210))
    assert [lr_factor(crd, e) for e in (0, 149, 150, 180, 239)] == pytest.approx([1, 1, 0.1, 0.01, 0.001])
    short = crd.with_overrides(epochs=24)
    assert short.milestones == (15, 18, 21)
    cos = Recipe("c", epochs=10, batch_size=8, lr=0.1, weight_decay=0, schedule="cosine")
    assert lr_factor(cos, 0) == 1 and lr_factor(cos, 5) == pytest.approx(0.5)


def test_stage_finished_while_waiting_is_loaded_not_retrained(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that did not find the artifact, then (under the stage's lock) finds it, loads it: it trains
    nothing, writes nothing, and its record says so."""
    from harness.core.identity import weights_digest as state_digest
    from harness.train.artifacts import ArtifactStore

    cache = tmp_path / "cache"
    (cache / "datasets").mkdir(parents=True)
    for f in (cache_dir / "datasets").glob("*.pt"):
        (cache / "datasets" / f.name).symlink_to(f)
    first = run_tiny(cache, tmp_path / "a").records[0]["stages"]["baseline[resnet8]"]
    artifact = cache / "artifacts" / "baseline" / f"{first['artifact']}.pt"
    assert first["digest"] == state_digest(torch.load(artifact, weights_only=False)["objective"])

    # the other process: at its start the artifact is missing, once it holds the lock it is there
    real_load, calls, saves = ArtifactStore.load, [], []
    monkeypatch.setattr(
        ArtifactStore,
        "load",
        lambda self, stage, key, **kw: (calls.append(key), None)[1] if not calls else real_load(self, stage, key, **kw),
    )
    monkeypatch.setattr(ArtifactStore, "save", lambda self, *a, **k: saves.append(a))
    second = run_tiny(cache, tmp_path / "b", threads=1).records[0]
    stage = second["stages"]["baseline[resnet8]"]
    assert len(calls) == 1 and not saves  # one (forced) miss, then the artifact under the lock; nothing saved
    assert stage["digest"] == first["digest"] and stage["origin"] == "cache"
    assert stage["reused"] is True and stage["trained_in_this_process"] is False  # origin "trained" if it had
    assert not list((cache / "artifacts").rglob("*.ckpt"))
