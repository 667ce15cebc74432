"""benchmarks/gpu_check.py, the prepared command for a GPU machine (issue 29), proven on this CPU: the whole
check at a toy budget, its bad input, a part that crashes or hangs, and the dry run's wheel checks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.plugins.manager import load_plugins

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


@pytest.fixture
def gpucheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """The script's modules importable here, as the script makes them."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))


def gpu_check(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_tiny_check_runs_every_part_and_every_builtin_method(tmp_path: Path, cache_dir: Path) -> None:
    t0 = time.perf_counter()
    done = gpu_check("--device", "cpu", "--tiny", "--out", str(tmp_path), "--cache-dir", str(cache_dir))
    wall = time.perf_counter() - t0
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    parts = results["parts"]
    assert list(parts) == ["environment", "methods", "engine", "concurrent", "determinism", "gate", "cifar10"]
    assert parts["gate"]["rows"] == [{"status": "skipped", "error": None}]  # --tiny: the gate's budget is fixed
    assert wall < results["scale"]["total_s"] + 60  # its budget holds (start-up and writing aside)

    builtin = [e.name for e in load_plugins(entry_points=False, warn=False).methods.entries() if not e.prefix]
    assert parts["environment"]["info"]["built-in methods"] == len(builtin)
    rows = parts["methods"]["rows"]
    assert [r["method"] for r in rows] == builtin  # every built-in method, each in its own bench run
    for r in rows:
        assert (r["status"], r["exit_code"], r["record"]) == ("ok", 0, "ok"), r
        assert r["seconds"] > 0 and r["top1"] is not None and r["stages"]
    summary = (tmp_path / "summary.md").read_text()
    assert all(f"| {name} |" in summary for name in builtin)

    measured = [r for r in parts["engine"]["rows"] if r["status"] != "skipped"]
    assert measured and all(r["engine_img_s"] > 0 and r["bare_img_s"] > 0 and r["ratio"] > 0 for r in measured)
    ks = [r for r in parts["concurrent"]["rows"] if isinstance(r["K"], int)]
    assert [r["K"] for r in ks] == list(results["scale"]["ks"]) and all(r["aggregate_img_s"] > 0 for r in ks)
    assert parts["concurrent"]["rows"][-1]["records"] == 2  # bench run --workers 2 of two seeds
    det = parts["determinism"]["rows"]
    assert [r["settings"] for r in det] == ["default", "deterministic"]
    assert all(isinstance(r["weights_equal"], bool) and len(r["digests"]) == 2 for r in det)
    cifar = parts["cifar10"]
    if cifar["status"] == "skipped":  # no JPEG CIFAR-10 beside this checkout
        assert "no JPEG CIFAR-10" in cifar["note"]
    else:
        assert [r["run"] for r in cifar["rows"]] == ["probe", "main"] and cifar["rows"][1]["top1"] is not None
    assert "===== " in (tmp_path / "log.txt").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--parts", "engine,nope", "--out", "x"], "--parts: unknown part(s) nope"),
        (["--device", "cpu"], "give --out DIR"),
        (["--check-install", "no-such-folder"], "--check-install no-such-folder: no such folder"),
        (["--total-s", "0", "--out", "x"], "--total-s 0: must be positive"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = gpu_check(*args)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_cuda_asked_without_cuda_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = gpu_check("--device", "cuda", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--device cuda: no CUDA device is available" in done.stderr and not (tmp_path / "out").exists()


def test_a_crash_or_a_hang_is_recorded_and_the_next_part_runs(tmp_path: Path, gpucheck: None) -> None:
    import argparse
    import os

    from gpucheck.check import Check, run_part
    from gpucheck.children import Runner
    from gpucheck.plan import TINY

    runner = Runner(tmp_path / "runner")
    hang = runner.run("hang", subprocess.call, {"args": ["sleep", "60"]}, timeout=2)
    assert hang.status == "timeout" and hang.seconds < 30 and "killed after" in hang.error
    crash = runner.run("crash", os.path.join, {"nope": 1}, timeout=60)
    assert crash.status == "failed" and crash.exit_code == 1 and crash.error.startswith("TypeError: ")

    args = argparse.Namespace(device="cpu", total_s=None, cache_dir=tmp_path / "cache")
    check = Check(args, TINY, tmp_path / "work")

    def broken(check: Check, part) -> None:  # noqa: ANN001
        raise RuntimeError("first line\nsecond line")

    def fine(check: Check, part) -> None:  # noqa: ANN001
        part.rows.append({"status": "ok"})

    assert run_part(check, "engine", broken).status == "failed"
    assert check.parts["engine"].error == "RuntimeError: first line"
    assert run_part(check, "concurrent", fine).status == "ok"


def test_dry_run_names_the_wheels_a_gpu_machine_lacks(tmp_path: Path, gpucheck: None) -> None:
    from gpucheck.install import PROJECT, canonical, carried_wheels, wheel_lines

    import harness

    wanted = carried_wheels()
    assert wanted and all("==" in w for w in wanted)  # pinned, as constraints.txt pins them
    assert not {"torch", "numpy", "scipy"} & {canonical(w.split("==")[0]) for w in wanted}  # on the GPU machine
    for w in wanted:
        name, version = w.split("==")
        (tmp_path / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").touch()
    (tmp_path / f"{PROJECT.replace('-', '_')}-{harness.__version__}-py3-none-any.whl").touch()
    lines, problems = wheel_lines(tmp_path, harness.__version__)
    assert problems == 0 and len(lines) == len(wanted) + 1, lines

    name, version = wanted[0].split("==")
    (tmp_path / f"{name.replace('-', '_')}-0.0.1-py3-none-any.whl").touch()  # a second version
    (tmp_path / f"{PROJECT.replace('-', '_')}-{harness.__version__}-py3-none-any.whl").rename(
        tmp_path / f"{PROJECT.replace('-', '_')}-{harness.__version__}-cp311-cp311-win_amd64.whl"
    )
    lines, problems = wheel_lines(tmp_path, harness.__version__)
    assert problems == 2, lines
    assert any(f"{canonical(name)}: 2 wheels" in line for line in lines)
    assert any("do not install on Python 3.12" in line for line in lines)


def test_dry_run_of_an_empty_folder_is_not_ready(tmp_path: Path) -> None:
    done = gpu_check("--check-install", str(tmp_path), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and "NOT READY" in done.stdout, done.stdout + done.stderr
    assert "encodenet-bench: 0 wheels" in done.stdout and "PROBLEM: no wheels to install" in done.stdout
    assert (tmp_path / "out" / "check-install.txt").read_text() == done.stdout
