"""The example third-party package, built and installed by pip, found through its entry point, run by bench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_example_plugin_installs_and_runs_through_entry_point(tmp_path: Path, cache_dir: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(REPO / "examples" / "bench-label-smoothing"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    env = {**os.environ, "PYTHONPATH": f"{target}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    plugins = subprocess.run(
        [sys.executable, "-m", "harness", "plugins"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "label_smoothing" in plugins and "bench-label-smoothing" in plugins
    out = tmp_path / "runs"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--methods",
            "label-smoothing",
            "--arch",
            "resnet8",
            "--dataset",
            "cifar10-mini",
            "--recipe",
            "smoke",
            "--epochs",
            "1",
            "--train-subset",
            "256",
            "--test-subset",
            "100",
            "--device",
            "cpu",
            "--no-latency",
            "--quiet",
            "--cache-dir",
            str(cache_dir),
            "--out",
            str(out),
            "--opt",
            "label-smoothing.epsilon=0.3",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    (record_file,) = out.glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["method"]["name"] == "label-smoothing"
    assert record["method"]["plugin"] == "label_smoothing"
    assert record["method"]["options"] == {"epsilon": 0.3}
    assert "train_smoothed_ce" in record["curves"][0]
