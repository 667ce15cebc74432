"""A rerun without --resume beside an interrupted stage's checkpoint says so before it starts again (issue 32)."""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import run_tiny, tiny_request
from harness.core.progress import Reporter
from harness.plugins.manager import load_plugins
from harness.run.prepare import prepare


def own_cache(tmp_path: Path, cache_dir: Path) -> Path:
    """An artifact store of this test's own, with the session's decoded datasets."""
    (cache_dir / "datasets").mkdir(parents=True, exist_ok=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "datasets").symlink_to(cache_dir / "datasets", target_is_directory=True)
    return cache


def checkpoint_of_baseline(cache: Path, out: Path) -> Path:
    """Where the tiny run's baseline stage keeps its checkpoint (its key, from a dry resolution)."""
    run = prepare(tiny_request(cache, out), load_plugins(warn=False), Reporter(), need_data=True)
    (entry,) = run.plan.of_seed(0)
    node = run.dry_runner(0).resolve(entry.plan.deploy, entry.name)
    assert node.key is not None
    return run.store.checkpoint_path(node.stage.name, node.key)


def test_rerun_without_resume_names_the_checkpoint_epoch(capsys, tmp_path: Path, cache_dir: Path) -> None:
    cache = own_cache(tmp_path, cache_dir)
    checkpoint = checkpoint_of_baseline(cache, tmp_path / "out")
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 2}, checkpoint)  # what an interrupted run leaves (only its epoch is read here)
    capsys.readouterr()
    run_tiny(cache, tmp_path / "out")
    err = capsys.readouterr().err
    assert (
        "bench: warning: baseline[resnet8]: a checkpoint of epoch 2 exists; --resume continues from it "
        "(without it this run trains the stage from epoch 1"
    ) in err
    assert not checkpoint.exists()  # trained from epoch 1 to the end: the artifact replaced it


def test_no_warning_without_a_checkpoint_or_with_retrain(capsys, tmp_path: Path, cache_dir: Path) -> None:
    cache = own_cache(tmp_path, cache_dir)
    capsys.readouterr()
    run_tiny(cache, tmp_path / "first")
    assert "checkpoint" not in capsys.readouterr().err
    checkpoint = checkpoint_of_baseline(cache, tmp_path / "out")
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 1}, checkpoint)
    capsys.readouterr()
    run_tiny(cache, tmp_path / "again", retrain=True)  # --retrain: starting again is what was asked
    assert "checkpoint" not in capsys.readouterr().err
