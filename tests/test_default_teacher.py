"""Default teachers: the headline command runs as written (issue 24)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_tiny
from harness.api import Register, hookimpl
from harness.cli import main
from harness.core.errors import UsageError
from harness.plugins.manager import load_plugins
from plugins.archs.cifar_resnet import cifar_resnet


def test_headline_command_dry_run_names_its_default_teacher(capsys, tmp_path: Path) -> None:
    args = [
        "run",
        "--methods",
        "encodenet,kd,cbam",
        "--arch",
        "resnet50",
        "--dry-run",
        "--no-download",
        "--out",
        str(tmp_path / "out"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("bench: note: teacher")]
    assert notes == [
        "bench: note: teacher resnet101 is resnet50's default (the next larger ResNet of the family); "
        "choose another with --teacher ARCH or --teacher-checkpoint PATH"
    ]
    assert "baseline[resnet101]" in " ".join(captured.out.split())  # the plan trains the default teacher
    assert main([*args, "--teacher", "resnet34"]) == 0  # --teacher overrides it
    captured = capsys.readouterr()
    assert "bench: note: teacher" not in captured.err
    out = " ".join(captured.out.split())
    assert "baseline[resnet34]" in out and "resnet101" not in out


class TinyStudent:
    """A third-party architecture that declares its own default teacher."""

    @staticmethod
    @hookimpl
    def bench_register_archs(register: Register) -> None:
        register(
            "tiny-student",
            lambda spec: cifar_resnet(spec, 8, (8, 8, 16, 32)),
            description="a tiny ResNet",
            default_teacher="resnet8",
            teacher_source="the tiny-student plugin",
        )


def test_a_plugins_declared_default_teacher_is_used_and_recorded(tmp_path: Path, cache_dir: Path) -> None:
    plugins = load_plugins(entry_points=False, warn=False, extra=[("tiny", TinyStudent)])
    (kd,) = [
        r
        for r in run_tiny(cache_dir, tmp_path, plugins, methods=["kd"], arch="tiny-student").records
        if r["method"]["name"] == "kd"
    ]
    teacher = kd["teacher"]
    assert teacher["arch"] == "resnet8" and teacher["default"] is True
    assert teacher["default_source"] == "the tiny-student plugin"
    explicit = run_tiny(
        cache_dir, tmp_path / "explicit", plugins, methods=["kd"], arch="tiny-student", teacher="resnet14"
    ).records[0]["teacher"]
    assert explicit["arch"] == "resnet14" and explicit["default"] is False


def test_no_default_teacher_is_one_line_naming_the_known_pairs(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(UsageError) as caught:
        run_tiny(cache_dir, tmp_path, methods=["kd"], arch="resnet8")
    text = str(caught.value)
    assert "\n" not in text and text.startswith("method 'kd' needs a teacher and resnet8 has no default teacher")
    for pair in (
        "resnet56 -> resnet20",
        "resnet110 -> resnet32",
        "resnet32x4 -> resnet8x4",
        "vgg16 -> vgg8",
        "resnet101 -> resnet50",
    ):
        assert pair in text


def test_an_unknown_registration_keyword_is_refused(capsys) -> None:
    class Typo:
        @staticmethod
        @hookimpl
        def bench_register_archs(register: Register) -> None:
            register("typo-net", lambda spec: None, default_teachr="resnet8")

    plugins = load_plugins(entry_points=False, extra=[("typo", Typo)])
    assert "typo-net" not in plugins.archs
    assert "unknown keyword(s) default_teachr" in capsys.readouterr().err


def test_list_archs_shows_default_teachers(capsys) -> None:
    assert main(["list", "archs"]) == 0
    rows = {
        line.split("│")[1].strip(): line.split("│")[-2].strip()
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("│") and line.split("│")[1].strip()
    }
    assert rows["resnet50"] == "resnet101" and rows["vgg8"] == "vgg16" and rows["resnet8"] == "-"
