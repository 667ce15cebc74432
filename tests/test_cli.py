"""The command line: one-line errors with exit code 2 before any training, tables in every format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from conftest import run_tiny
from harness.cli import main


def fails(capsys: pytest.CaptureFixture, args: list[str], cache: Path) -> str:
    code = main([*args, "--cache-dir", str(cache), "--device", "cpu", "--quiet"] if args[0] == "run" else args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("bench: error: ")
    return err


RUN = ["run", "--dataset", "cifar10-mini", "--recipe", "smoke"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--methods", "basline", "--arch", "resnet8"], "unknown method 'basline'. Did you mean 'baseline'?"),
        (["--methods", "baseline", "--arch", "resnet21"], "unknown architecture 'resnet21'. Did you mean"),
        (
            ["--methods", "baseline", "--arch", "resnet8", "--recipe", "crdd"],
            "unknown recipe 'crdd'. Did you mean 'crd'?",
        ),
        (["--methods", "baseline", "--arch", "resnet8", "--teacher", "resnet20"], "none of the methods"),
        (["--methods", "baseline", "--arch", "resnet8", "--select", "val"], "--val-split"),
        (["--methods", "baseline", "--arch", "resnet8", "--opt", "baseline.x=1"], "has no option 'x'"),
        (["--methods", "baseline", "--arch", "resnet8", "--opt", "kd.temperature=2"], "not in --methods"),
        (["--methods", "baseline", "--arch", "resnet8", "--opt", "nonsense"], "METHOD.NAME=VALUE"),
        (["--methods", "baseline,baseline", "--arch", "resnet8"], "twice"),
        (
            ["--methods", "baseline", "--arch", "resnet8", "--epochs", "0"],
            "argument --epochs: must be an integer >= 1, got '0'",
        ),
        (["--methods", "baseline", "--arch", "timm:not_a_model"], "unknown timm model 'not_a_model'"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path: Path, args: list[str], expected: str) -> None:
    assert expected in fails(capsys, [*RUN, *args], tmp_path)
    assert not (tmp_path / "artifacts").exists()  # nothing trained


def test_missing_cifar_says_what_to_do(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err = fails(
        capsys,
        [
            "run",
            "--methods",
            "baseline",
            "--arch",
            "resnet8",
            "--dataset",
            "cifar100",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--no-download",
        ],
        tmp_path,
    )
    assert "cifar100" in err and "--data-dir" in err
    assert "cifar10-mini" in err and "imagefolder:PATH" in err  # the offline choices


def test_offline_download_failure_names_the_offline_datasets(capsys, tmp_path: Path, monkeypatch) -> None:
    import plugins.datasets.cifar as cifar

    def no_network(*args: object, **kwargs: object) -> object:
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(cifar, "_torchvision_split", no_network)
    err = fails(capsys, ["run", "--methods", "baseline", "--arch", "resnet8", "--dataset", "cifar10"], tmp_path)
    assert "download failed" in err and "--dataset cifar10-mini (bundled" in err and "imagefolder:PATH" in err


def test_scaled_milestones_that_coincide_are_reported(capsys, tmp_path: Path) -> None:
    from harness.cli import main as bench

    args = [
        "run",
        "--methods",
        "baseline",
        "--arch",
        "resnet8",
        "--dataset",
        "cifar10-mini",
        "--recipe",
        "crd",
        "--dry-run",
        "--out",
        str(tmp_path / "out"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert bench([*args, "--epochs", "3"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "milestones" in line]
    assert warning == [
        "bench: warning: --epochs 3 scales recipe crd's milestones [150, 180, 210] to [2, 2, 3], "
        "which coincide: epochs 1-2 lr 0.05, epoch 3 lr 0.0005; give --milestones (or --schedule "
        "cosine) to choose"
    ]
    assert bench([*args, "--epochs", "24"]) == 0  # [15, 18, 21]: distinct, no warning
    assert bench([*args, "--epochs", "3", "--milestones", "1,2"]) == 0
    assert "milestones" not in capsys.readouterr().err


def test_missing_imagefolder(capsys, tmp_path: Path) -> None:
    err = fails(
        capsys,
        ["run", "--methods", "baseline", "--arch", "resnet8", "--dataset", f"imagefolder:{tmp_path / 'none'}"],
        tmp_path,
    )
    assert "no dataset at" in err


def test_table_formats(capsys, tmp_path: Path, cache_dir: Path) -> None:
    run_tiny(cache_dir, tmp_path, seeds=[0, 1])
    assert main(["table", str(tmp_path), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["method"] == "baseline" and row["n"] == 2 and len(row["values"]) == 2
    assert row["params"] == 78_042 and row["flops"] > 0
    assert main(["table", str(tmp_path), "--format", "csv"]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row["method"] == "baseline" and int(row["n"]) == 2 and int(row["params"]) == 78_042
    assert main(["table", str(tmp_path), "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "| baseline" in md and "last epoch" in md
    assert main(["table", str(tmp_path / "empty")]) == 2


def test_list_commands(capsys) -> None:
    for kind in ("methods", "archs", "datasets", "recipes"):
        assert main(["list", kind]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "resnet32x4" in out and "cifar10-mini" in out and "240 ep" in out


def test_version_is_the_package_version_and_the_checkout_commit(capsys, monkeypatch, tmp_path: Path) -> None:
    import harness
    from harness.results.records import git_commit

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.strip()
    commit = git_commit()
    assert out == f"encodenet-bench {harness.__version__}" + (f" (git {commit})" if commit else "")
    # an installed package has no commit of its own, also in a venv inside a checkout
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    site = tmp_path / ".venv" / "lib" / "site-packages"
    monkeypatch.setattr(harness, "__file__", str(site / "harness" / "__init__.py"))
    assert git_commit() is None
