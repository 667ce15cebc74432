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
def fixed_rate(monkeypatch):
    """A device rate of 1e11 FLOP/s, so that estimates are exact functions of the counted FLOPs."""
    monkeypatch.setattr(workload, "device_rate", lambda device_type, amp: 1e11)


def test_stage_flops_count_the_trained_model_three_times_and_a_teacher_once(tmp_path: Path, cache_dir: Path) -> None:
    from harness.models.cost import count_cost
    import torch

    # --retrain: a stage another test trained would otherwise be 'cached', and cached stages cost nothing
    run = prepare(
        tiny_request(cache_dir, tmp_path, methods=["baseline", "kd"], teacher="resnet14", retrain=True),
        load_plugins(warn=False),
        Reporter(),
    )
    work = workload.plan_work(run)
    by = {(s.method, s.stage.label): s for s in work.stages}
    cpu = torch.device("cpu")
    student = count_cost(
        run.plugins.archs.resolve("resnet8").obj(run.env(0, Reporter()).arch_spec("resnet8")), (3, 32, 32), cpu
    ).flops
    teacher = count_cost(
        run.plugins.archs.resolve("resnet14").obj(run.env(0, Reporter()).arch_spec("resnet14")), (3, 32, 32), cpu
    ).flops
    assert by[("baseline", "baseline[resnet8]")].step_flops == 3 * student
    assert by[("kd", "train")].step_flops == 3 * student + teacher
    assert by[("kd", "baseline[resnet14]")].state == "train" and by[("kd", "baseline[resnet14]")].image_epochs == 320
    assert work.image_epochs == 3 * 320  # baseline, teacher, kd: one epoch of 320 images each


def test_long_cpu_plan_is_said_before_training(tmp_path: Path, cache_dir: Path, fixed_rate) -> None:
    plugins = load_plugins(warn=False)
    long = prepare(
        tiny_request(
            cache_dir, tmp_path, arch="resnet20", recipe="crd", overrides={}, train_subset=None, test_subset=None
        ),
        plugins,
        Reporter(),
    )
    work = workload.plan_work(long)
    assert work.image_epochs == 240 * 5000
    note = workload.long_plan_note(long)
    assert note is not None and f"{work.image_epochs:,} image-epochs" in note
    assert f"about {workload.hours(work.flops / 1e11)} on this CPU" in note
    assert "--epochs N, --train-subset N, --recipe smoke" in note
    short = prepare(tiny_request(cache_dir, tmp_path), plugins, Reporter())
    assert workload.long_plan_note(short) is None  # 320 images, one epoch


def test_dry_run_says_what_a_missing_dataset_would_train(capsys, tmp_path: Path) -> None:
    args = [
        "run",
        "--methods",
        "baseline,kd",
        "--arch",
        "resnet20",
        "--dataset",
        "cifar100",
        "--no-download",
        "--dry-run",
        "--epochs",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "dataset cifar100 is not on disk; --no-download was given, so a real run stops here" in out
    assert "50,000 training images declared" in out
    # baseline 2 epochs, the default teacher resnet56 2 epochs, kd 2 epochs: 6 x 50,000
    assert "300,000 image-epochs of training" in out and "baseline[resnet56] 2 ?, train 2 ?" in out
    # the stage graph of the same plan, on the declared size (issue 32: it said 0 jobs, 0 image-epochs)
    assert "stage graph: 3 stage jobs, 3 to train in 2 layers, 300,000 image-epochs in all" in out
    assert main([*args[:2], "baseline,baseline-matched", *args[3:]]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "baseline[resnet20] 2 (shared)" in out  # one baseline, whichever method needs it


def test_a_plan_of_more_than_a_day_gets_both_routes(capsys, tmp_path: Path, cache_dir: Path, monkeypatch) -> None:
    """Beyond a day on this CPU: the GPU route (the same command with --device cuda, or Ray/Slurm) and the CPU
    route (a smaller architecture, --recipe smoke, subsets), in the dry run and before a real run trains."""
    monkeypatch.setattr(workload, "device_rate", lambda device_type, amp: 1e8)
    args = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "resnet8",
        "--dataset",
        "cifar10-mini",
        "--dry-run",
        "--out",
        str(tmp_path / "out"),
        "--cache-dir",
        str(cache_dir),
    ]
    assert main(args) == 0  # crd: 240 epochs of 5,000 images
    out = " ".join(capsys.readouterr().out.split())
    routes = (
        "On a GPU: the same command with --device cuda",
        "--executor ray or --executor slurm",
        "--arch resnet8 or resnet20",
        "--recipe smoke",
        "--train-subset N --test-subset N",
    )
    assert "days on this CPU" in out and all(route in out for route in routes)
    run = prepare(
        tiny_request(cache_dir, tmp_path, recipe="crd", overrides={}, train_subset=None, test_subset=None),
        load_plugins(warn=False),
        Reporter(),
    )
    note = workload.long_plan_note(run)
    assert note is not None and all(route in " ".join(note.split()) for route in routes)
    assert main([*args, "--epochs", "1", "--train-subset", "100"]) == 0  # 100 image-epochs: minutes, no routes
    assert "On a GPU" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "dataset, extra",
    [
        ("imagefolder:{tmp}/nowhere", []),  # a path that does not exist
        ("imagefolder:{tmp}/broken.zip", []),  # an archive that cannot be read
    ],
)
def test_dry_run_refuses_missing_or_broken_local_data(capsys, tmp_path: Path, dataset: str, extra: list[str]) -> None:
    """Local data is validated by a dry run as by a real one: exit 2 with the loader's line (issue 32: exit 0)."""
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    args = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "resnet8",
        "--dataset",
        dataset.format(tmp=tmp_path),
        *[a.format(tmp=tmp_path) for a in extra],
        "--dry-run",
        "--out",
        str(tmp_path / "out"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: ") and len(err.strip().splitlines()) == 1


def test_an_offline_dry_run_says_the_data_cannot_be_downloaded(capsys, tmp_path: Path) -> None:
    """A dataset a real run downloads, on a machine that cannot: the dry run plans on its declared shape and says
    that a real run here stops, with the loader's reason (issue 32: "it is downloaded by a real run")."""
    import types

    from harness.api import DataUnavailableError, hookimpl
    from harness.testing import bench_with

    def offline(request):
        raise DataUnavailableError("web10: not in the cache and the download failed (URLError: no network)")

    @hookimpl
    def bench_register_datasets(register):
        register(
            "web10",
            offline,
            description="downloaded on first use",
            classes=10,
            in_chans=3,
            input_size=32,
            train_images=1_000,
            test_images=100,
            downloads=True,
        )

    plugin = types.SimpleNamespace(bench_register_datasets=bench_register_datasets)
    args = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "resnet8",
        "--dataset",
        "web10",
        "--recipe",
        "smoke",
        "--dry-run",
        "--out",
        str(tmp_path / "out"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert bench_with([plugin], args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "dataset web10 is not on disk; this machine cannot download it, so a real run here stops too: web10: not "
        "in the cache and the download failed (URLError: no network)"
    ) in out
    assert "3,000 image-epochs of training" in out and "stage graph: 1 stage jobs, 1 to train in 1 layers, 3,000" in out
