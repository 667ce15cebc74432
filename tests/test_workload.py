"""What a plan trains and about how long, before anything trains (issue 20): dry runs, long CPU plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import tiny_request
from harness.cli import main
from harness.core.progress import Reporter
from harness.plugins.manager import load_plugins
from harness.run import workload
from harness.run.prepare import prepare


@pytest.fixture
def fixed_rate(monkeypatch):  # type: ignore[no-untyped-def]
    """A device rate of 1e11 FLOP/s, so that estimates are exact functions of the counted FLOPs."""
    monkeypatch.setattr(workload, "device_rate", lambda device_type, amp: 1e11)


def test_stage_flops_count_the_trained_model_three_times_and_a_teacher_once(tmp_path: Path, cache_dir: Path) -> None:
    from harness.models.cost import count_cost
    import torch

    # --retrain: a stage another test trained would otherwise be 'cached', and cached stages cost nothing
    run = prepare(tiny_request(cache_dir, tmp_path, methods=["baseline", "kd"], teacher="resnet14", retrain=True),
                  load_plugins(warn=False), Reporter())
    work = workload.plan_work(run)
    by = {(s.method, s.stage.label): s for s in work.stages}
    cpu = torch.device("cpu")
    student = count_cost(run.plugins.archs.resolve("resnet8").obj(run.env(0, Reporter()).arch_spec("resnet8")),
                         (3, 32, 32), cpu).flops
    teacher = count_cost(run.plugins.archs.resolve("resnet14").obj(run.env(0, Reporter()).arch_spec("resnet14")),
                         (3, 32, 32), cpu).flops
    assert by[("baseline", "baseline[resnet8]")].step_flops == 3 * student
    assert by[("kd", "train")].step_flops == 3 * student + teacher
    assert by[("kd", "baseline[resnet14]")].state == "train" and by[("kd", "baseline[resnet14]")].image_epochs == 320
    assert work.image_epochs == 3 * 320  # baseline, teacher, kd: one epoch of 320 images each


def test_long_cpu_plan_is_said_before_training(tmp_path: Path, cache_dir: Path, fixed_rate) -> None:
    plugins = load_plugins(warn=False)
    long = prepare(tiny_request(cache_dir, tmp_path, arch="resnet20", recipe="crd", overrides={}, train_subset=None,
                                test_subset=None), plugins, Reporter())
    work = workload.plan_work(long)
    assert work.image_epochs == 240 * 5000
    note = workload.long_plan_note(long)
    assert note is not None and f"{work.image_epochs:,} image-epochs" in note
    assert f"about {workload.hours(work.flops / 1e11)} on this CPU" in note
    assert "--epochs N, --train-subset N, --recipe smoke" in note
    short = prepare(tiny_request(cache_dir, tmp_path), plugins, Reporter())
    assert workload.long_plan_note(short) is None  # 320 images, one epoch


def test_dry_run_says_what_a_missing_dataset_would_train(capsys, tmp_path: Path) -> None:
    args = ["run", "--methods", "baseline,kd", "--arch", "resnet20", "--dataset", "cifar100", "--no-download",
            "--dry-run", "--epochs", "2", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "dataset cifar100 is not on disk" in out and "50,000 training images declared" in out
    # baseline 2 epochs, the default teacher resnet56 2 epochs, kd 2 epochs: 6 x 50,000
    assert "300,000 image-epochs of training" in out and "baseline[resnet56] 2 ?, train 2 ?" in out
    assert main([*args[:2], "baseline,baseline-matched", *args[3:]]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "baseline[resnet20] 2 (shared)" in out  # one baseline, whichever method needs it
