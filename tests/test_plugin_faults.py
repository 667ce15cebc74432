"""Plugins and signals (issue 22, class 5): a plugin's exception in any call bench makes of it is one line
naming the plugin and the call (``--debug`` / ``BENCH_DEBUG=1`` add the traceback); a dataset plugin's loader
output is validated (class 4: float images, int32 or out-of-range labels, NHWC, statistics per channel);
SIGTERM is handled like Ctrl-C (checkpoint kept, one line, exit 143); ``--dry-run`` validates the executor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from conftest import kill_at
from test_faults import TINY, fresh_plugins, one_line_error  # noqa: F401  (a fixture)
from test_plugins import fake_distribution

FAULTY = """
    import torch
    from harness.api import ImageDataset, Method, Plan, hookimpl

    class PlanFails(Method):
        def plan(self, run):
            raise ValueError("plan boom")

    class ObjectiveFails(Method):
        def objective(self, ctx):
            raise ValueError("objective boom")

    class ReportFails(Method):
        def plan(self, run):
            return Plan(super().plan(run).deploy, report=self.report)

        def report(self, deployed, env):
            raise ValueError("report boom")

    class InitFails(Method):
        def __init__(self, name, options=None):
            raise ValueError("init boom")

    class ExitsInPlan(Method):
        def plan(self, run):
            raise SystemExit(3)

    def images(n, dtype=torch.uint8):
        g = torch.Generator().manual_seed(0)
        return (torch.rand(n, 3, 8, 8, generator=g) * 255).to(dtype)

    def dataset(**changes):
        fields = dict(name="d", train_images=images(20), train_labels=torch.arange(20) % 2,
                      test_images=images(10), test_labels=torch.arange(10) % 2, classes=["a", "b"],
                      mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), source="made up")
        fields.update(changes)
        return lambda request: ImageDataset(**fields)

    def raises(request):
        raise RuntimeError("loader boom")

    @hookimpl
    def bench_register_methods(register):
        for name, cls in (("plan-fails", PlanFails), ("objective-fails", ObjectiveFails),
                          ("report-fails", ReportFails), ("init-fails", InitFails), ("exits-in-plan", ExitsInPlan)):
            register(name, cls)

    @hookimpl
    def bench_register_datasets(register):
        register("raises", raises)
        register("float-images", dataset(train_images=images(20, torch.float32) / 255))
        register("int32-labels", dataset(train_labels=(torch.arange(20) % 2).int()))
        register("labels-out-of-range", dataset(test_labels=torch.arange(10) % 3))
        register("nhwc", dataset(train_images=images(20).permute(0, 2, 3, 1),
                                 test_images=images(10).permute(0, 2, 3, 1)))
        register("one-mean", dataset(mean=(0.5,)))
        register("cast-01", dataset(train_images=(images(20, torch.float32) / 255).round().to(torch.uint8)))
        register("not-a-dataset", lambda request: {"train": None})
"""


@pytest.fixture
def faulty(fresh_plugins: Path) -> Path:  # noqa: F811
    fake_distribution(fresh_plugins, "bench-faulty", "faulty", "bench_faulty_mod", FAULTY)
    return fresh_plugins


def run_args(tmp_path: Path, method: str, dataset: str = "cifar10-mini") -> list[str]:
    args = [*TINY, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    args[args.index("--methods") + 1] = method
    args[args.index("--dataset") + 1] = dataset
    return args


@pytest.mark.parametrize(
    "method, code, expected",
    [
        ("plan-fails", 2, "plugin 'faulty' failed in method 'plan-fails'.plan(): ValueError: plan boom"),
        ("exits-in-plan", 2, "plugin 'faulty' failed in method 'exits-in-plan'.plan(): SystemExit: 3"),
        (
            "init-fails",
            2,
            "plugin 'faulty' failed in method 'init-fails' (its options or constructor): ValueError: init boom",
        ),
        (
            "objective-fails",
            2,
            "method 'objective-fails' cannot be set up on resnet8 for cifar10-mini (3x32x32, 10 classes): "
            "plugin 'faulty' failed in stage objective-fails/train: objective(): ValueError: objective "
            "boom",
        ),
        (
            "report-fails",
            1,
            "report-fails (seed 0): plugin 'faulty' failed in method 'report-fails'.report(): ValueError: report boom",
        ),
    ],
)
def test_a_plugins_exception_is_one_line_naming_plugin_and_call(
    capsys, faulty: Path, tmp_path: Path, method: str, code: int, expected: str
) -> None:
    line = one_line_error(capsys, run_args(tmp_path, method), code=code)
    assert line == f"bench: error: {expected}"


def test_debug_shows_the_traceback_behind_the_line(capsys, faulty: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_DEBUG", "0")  # restored afterwards (--debug sets it for worker processes)
    assert main(["--debug", *run_args(tmp_path, "plan-fails")]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and 'raise ValueError("plan boom")' in err
    assert err.strip().splitlines()[-1].startswith("bench: error: plugin 'faulty' failed in method 'plan-fails'")
    monkeypatch.setenv("BENCH_DEBUG", "1")
    assert main(run_args(tmp_path, "plan-fails")) == 2 and "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("BENCH_DEBUG", "0")
    assert main(run_args(tmp_path, "plan-fails")) == 2 and "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "dataset, expected",
    [
        ("raises", "plugin 'faulty' failed in the loader of dataset 'raises': RuntimeError: loader boom"),
        ("float-images", "dataset plugin 'faulty' (loader of 'float-images'): train_images are torch.float32 in ["),
        ("int32-labels", "train_labels are torch.int32; bench expects int64 class indices: return labels.long()"),
        ("labels-out-of-range", "test_labels lie in [0, 2]; with 2 classes they must lie in [0, 1]"),
        ("nhwc", "train_images have shape (20, 8, 8, 3), which looks like (N, H, W, C)"),
        ("one-mean", "mean has 1 value(s) for 3 channel(s); give one per channel"),
        ("cast-01", "train_images hold only the values 0 and 1: images in [0, 1] cast to uint8?"),
        (
            "not-a-dataset",
            "dataset plugin 'faulty' (loader of 'not-a-dataset'): returned a dict, not a harness.api.ImageDataset",
        ),
    ],
)
def test_a_dataset_plugins_output_is_validated(
    capsys, faulty: Path, tmp_path: Path, dataset: str, expected: str
) -> None:
    line = one_line_error(capsys, run_args(tmp_path, "baseline", dataset), code=2)
    assert expected in line
    assert not (tmp_path / "cache" / "artifacts").exists()  # refused before anything trains


def test_a_sound_dataset_plugin_passes_the_check(faulty: Path) -> None:
    from harness.data.validate import check_loaded
    from harness.plugins.manager import get_plugins

    from harness.data.datasets import DatasetRequest

    plugins = get_plugins()
    ds = plugins.datasets.resolve("cifar10-mini").obj(DatasetRequest(name="cifar10-mini", cache_dir=Path("/tmp/x")))
    assert check_loaded(ds, "bundled", "cifar10-mini") is ds


# ---- executors ---------------------------------------------------------------------------------------------


def test_dry_run_validates_the_executor_like_a_real_run(capsys, tmp_path: Path) -> None:
    base = [*TINY, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--dry-run"]
    line = one_line_error(capsys, [*base, "--executor", "nope"], code=2)
    assert line.startswith("bench: error: unknown executor 'nope'.")
    line = one_line_error(capsys, [*base, "--executor", "ray", "--ray-address", "not an address"], code=2)
    assert "--ray-address not an address: expected HOST:PORT" in line
    line = one_line_error(
        capsys, [*base, "--executor", "slurm", "--slurm-local", "--slurm-opt", "timeout_min=0"], code=2
    )
    assert "--slurm-opt timeout_min must be an integer >= 1, got 0" in line


def test_a_dry_run_without_the_data_validates_on_the_declared_shape(capsys, tmp_path: Path) -> None:
    """cifar10 is not on disk here: the plan's models are still built (on a stand-in of its declared shape),
    so what a real run would refuse before training is refused by the dry run too."""
    base = [
        "run",
        "--methods",
        "baseline",
        "--dataset",
        "cifar10",
        "--no-download",
        "--recipe",
        "smoke",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
        "--dry-run",
        "--quiet",
    ]
    line = one_line_error(capsys, [*base, "--arch", "msdnet:blocks=0"], code=2)
    assert "architecture option msdnet.blocks must be an integer > 0, got 0" in line
    assert main([*base, "--arch", "resnet8"]) == 0


def test_a_ray_address_where_nothing_answers_is_one_line_at_once(capsys, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = [*TINY, "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    line = one_line_error(capsys, [*base, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"], code=2)
    assert f"--ray-address 127.0.0.1:{port}: no Ray cluster answers at 127.0.0.1:{port} (Connection refused)" in line


def test_connecting_to_something_that_is_no_ray_cluster_is_bounded() -> None:
    import time

    from harness.core.errors import UsageError
    from plugins.executors.ray_cluster import bounded

    t0 = time.monotonic()
    with pytest.raises(UsageError, match="connecting: no answer within 0.5 s"):
        bounded(lambda: time.sleep(30), 0.5, "connecting")
    assert time.monotonic() - t0 < 5


def test_an_executor_plugins_exception_names_it(faulty: Path) -> None:
    from harness.api import Backend
    from harness.core.errors import PluginFailed
    from harness.run.sweep.backend import GuardedBackend

    class Broken(Backend):
        name = "broken"

        def submit(self, spec):
            raise OSError("cannot reach the queue")

        def wait(self, handles):
            return []

    with pytest.raises(PluginFailed, match=r"plugin 'x' failed in executor 'broken'.submit\(\): OSError: cannot"):
        GuardedBackend(Broken(), "x").submit(None)  # type: ignore[arg-type]  # a wrong spec on purpose


# ---- signals -----------------------------------------------------------------------------------------------


def test_sigterm_keeps_the_checkpoint_says_so_and_exits_143(tmp_path: Path) -> None:
    from test_data import make_tree

    tree = make_tree(tmp_path / "tree")
    args = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "resnet8",
        "--dataset",
        f"imagefolder:{tree}",
        "--recipe",
        "smoke",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--no-latency",
        "--quiet",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
    ]
    env = {**os.environ, **kill_at("2:1:TERM")}  # SIGTERM in the middle of epoch 2
    done = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env)
    assert done.returncode == 143, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "bench: terminated (SIGTERM); finished stages and the last "
        "epoch's checkpoints are kept, rerun with --resume to continue"
    )
    assert "Traceback" not in done.stderr
    (ckpt,) = (tmp_path / "cache" / "artifacts").rglob("*.ckpt")  # epoch 1's
    resumed = subprocess.run(
        [sys.executable, "-m", "harness", *args[:-1], str(tmp_path / "out"), "--resume"], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")]
    assert record["stages"]["baseline[resnet8]"]["resumed_from_epoch"] == 1 and not ckpt.exists()
