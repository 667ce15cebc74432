"""Installed like users install it: the package data a wheel must carry, found through the installed package.

``.ci/run`` also runs this file with the interpreter of a fresh virtual environment into which the built
wheel was installed (``BENCH_EXPECT_INSTALLED=1``, ``BENCH_DIST`` = the folder of the built sdist and wheel),
from a folder outside the checkout: there every check below reads the installed package and the very
distributions CI built, not the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib import resources
from pathlib import Path

import pytest

import harness
from harness.results.records import version_line
from harness.results.reference import load_reference

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "harness" / "results" / "reference_data"
INSTALLED = os.environ.get("BENCH_EXPECT_INSTALLED") == "1"


def reference_sources() -> list[str]:
    """Every data file of the checkout's reference folder (what the package must ship)."""
    names = sorted(p.name for p in SOURCE.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc"))
    assert names, f"no reference files in {SOURCE}"
    return names


def test_harness_is_imported_from_where_this_run_expects() -> None:
    inside = Path(harness.__file__).resolve().is_relative_to(REPO)
    assert inside != INSTALLED, f"harness imported from {harness.__file__} (BENCH_EXPECT_INSTALLED={INSTALLED})"
    if INSTALLED:  # no checkout around an installed package: the version alone
        assert version_line() == f"encodenet-bench {harness.__version__}"


def test_every_reference_file_is_found_through_the_installed_package() -> None:
    shipped = resources.files("harness.results.reference_data")
    for name in reference_sources():
        found = shipped / name
        assert found.is_file(), f"{name} is not in the installed package: add it to package-data in pyproject.toml"
        assert found.read_bytes() == (SOURCE / name).read_bytes(), f"the installed {name} differs from the checkout's"
    loaded = {v.where.split(":")[0] for v in load_reference()}
    assert loaded == {n for n in reference_sources() if n.endswith((".csv", ".json"))}


def test_bundled_dataset_studies_and_typing_marker_are_installed() -> None:
    from harness import studies

    assert (resources.files("plugins.datasets") / "data" / "cifar10-mini.zip").is_file()
    assert studies.names() == ["crd", "smoke", "table2", "table3", "table4", "table5"]  # bench reproduce's tables
    assert (resources.files("harness") / "py.typed").is_file()


def test_python_dash_m_harness_is_bench(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "harness", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.strip() == version_line()


def built_distributions(tmp_path: Path) -> tuple[Path, Path]:
    """The sdist and wheel that ``.ci/run`` built and installed (``BENCH_DIST``), else built here from a copy of
    what the build reads (so the checkout gets no build/ or egg-info)."""
    if os.environ.get("BENCH_DIST"):
        dist = Path(os.environ["BENCH_DIST"])
    else:
        pytest.importorskip("build")
        if INSTALLED:
            pytest.skip("installed run without BENCH_DIST: nothing to build from")
        src, dist = tmp_path / "src", tmp_path / "dist"
        src.mkdir()
        for name in ("pyproject.toml", "MANIFEST.in", "README.md", "constraints.txt"):
            shutil.copy(REPO / name, src / name)
        for package in ("harness", "plugins"):
            shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return sdist, wheel


def test_sdist_and_wheel_carry_the_package_data_and_nothing_of_the_repository(tmp_path: Path) -> None:
    sdist, wheel = built_distributions(tmp_path)
    needed = [f"harness/results/reference_data/{name}" for name in reference_sources()]
    needed += ["plugins/datasets/data/cifar10-mini.zip", "harness/py.typed", "harness/__main__.py"]
    needed += [f"harness/studies/{p.name}" for p in sorted((REPO / "harness" / "studies").glob("*.toml"))]
    with tarfile.open(sdist) as tar:
        in_sdist = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = zf.namelist()
    for names, extra in ((in_sdist, ["pyproject.toml", "README.md", "constraints.txt"]), (in_wheel, [])):
        assert not [n for n in needed + extra if n not in names]
        assert not [
            n
            for n in names
            if n.split("/")[0]
            in ("results", "tests", "examples", "benchmarks", "scripts", "build", "dist", ".cache", ".venv")
        ]
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert {n.split("/")[0] for n in in_wheel} == {
        "harness",
        "plugins",
        f"encodenet_bench-{harness.__version__}.dist-info",
    }
