"""The README's code blocks run as typed in a fresh shell after the set-up command (issue 32: its first
comparison typed ``bench``, which the set-up never puts on the PATH: ``bench: command not found``).

The set-up block is not run here: it makes the virtual environment these tests run in and runs this test
suite (``.ci/run`` runs it from nothing). The first comparison trains ResNet-50 and ResNet-101 for minutes:
it runs as typed with ``BENCH_README_FULL=1``; always, its commands run as typed in a fresh shell with
``--dry-run`` added to ``bench run``, and ``bench table`` on records of its methods.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO
from test_tables import record

README = REPO / "README.md"
VENV = REPO / ".venv"


def blocks() -> list[str]:
    """The README's ``bash`` code blocks, in order."""
    return re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)


def commands(block: str) -> list[str]:
    """The block's command lines: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", "", block)
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def fresh_shell(script: str, where: Path, cache: Path) -> subprocess.CompletedProcess:
    """``script`` in a new bash (``set -e``) in ``where``, whose ``.venv`` is the set-up's: a PATH without the
    virtual environment, no VIRTUAL_ENV, the test session's bench cache (the bundled dataset decoded once)."""
    (where / ".venv").symlink_to(VENV, target_is_directory=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(where)),
        "LANG": "C.UTF-8",
        "BENCH_CACHE_DIR": str(cache),
        "COLUMNS": "160",
    }
    return subprocess.run(["bash", "-e", "-c", script], cwd=where, env=env, capture_output=True, text=True)


needs_venv = pytest.mark.skipif(
    not (VENV / "bin" / "bench").exists(), reason="no .venv/bin/bench: the README's set-up command makes it"
)


def test_the_readme_has_the_set_up_and_the_first_comparison() -> None:
    setup, first, *rest = blocks()
    assert setup.startswith("python3 -m venv .venv && ") and "\n.venv/bin/python -m pytest -q\n" in setup
    assert not rest, "a new README block: run it in this module"
    assert [c.split()[:2] for c in commands(first)] == [[".venv/bin/bench", "run"], [".venv/bin/bench", "table"]]


@needs_venv
def test_the_first_comparison_runs_in_a_fresh_shell(tmp_path: Path, cache_dir: Path) -> None:
    """Its commands as typed, the training replaced by its plan (``--dry-run``), the table over records."""
    first = blocks()[1]
    dry = "\n".join(c + " --dry-run" if c.startswith(".venv/bin/bench run ") else c for c in commands(first))
    runs = tmp_path / "results" / "runs"
    runs.mkdir(parents=True)
    for i, method in enumerate(("baseline", "encodenet", "kd", "cbam")):
        (runs / f"{method}.json").write_text(json.dumps(record(method, 0, 10.0 + i)))
    done = fresh_shell(dry, tmp_path, cache_dir)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "stage graph: 6 stage jobs" in out  # the plan: baseline, teacher, kd, cbam, autoencoder, head
    assert all(m in out for m in ("encodenet", "kd", "cbam")) and "top-1" in out  # the table


@needs_venv
@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("BENCH_README_FULL") != "1",
    reason="trains ResNet-50 and ResNet-101 for minutes on a CPU: BENCH_README_FULL=1 runs it",
)
def test_the_first_comparison_as_typed(tmp_path: Path, cache_dir: Path) -> None:
    done = fresh_shell(blocks()[1], tmp_path, cache_dir)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "results" / "runs").glob("*.json"))) == 4  # encodenet, kd, cbam, baseline
