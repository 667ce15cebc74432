"""Shared by every golden script: the command line (a checkout of the reference repository, ``--out``), the
checkout put first on ``sys.path`` and its HEAD commit, and the fixture's header. It imports nothing of the
harness: the values are the reference's alone.

Usage of a script: ``[ENV] python scripts/golden/NAME.py CHECKOUT [--out tests/golden/NAME.json]``, CHECKOUT a
git clone of the reference repository, checked out at the commit the fixture's header names (README.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

TESTS = Path(__file__).resolve().parents[2] / "tests"
sys.path.insert(0, str(TESTS))  # for the fixture format (tests/golden/__init__.py)
from golden import dump  # noqa: E402


class Reference:
    """A checkout of ``repository`` (GitHub's ``owner/name``) made importable, and where the fixture goes.

    ``env`` is what the command needs before ``python`` (e.g. ``PYTHONPATH=<dir with yacs> ``); it goes into
    the header's ``command``.
    """

    def __init__(self, name: str, file: str, repository: str, env: str = "") -> None:
        self.name, self.file, self.repository, self.env = name, file, repository, env
        parser = argparse.ArgumentParser(description=f"golden values of {file} ({repository}) -> {self.fixture}")
        parser.add_argument("checkout", type=Path, help=f"a git clone of {repository}")
        parser.add_argument("--out", type=Path, default=TESTS / "golden" / f"{name}.json")
        args = parser.parse_args()
        self.out = args.out
        self.checkout = args.checkout.resolve()
        self.commit = subprocess.run(
            ["git", "-C", str(self.checkout), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
        sys.path.insert(0, str(self.checkout))

    @property
    def fixture(self) -> str:
        return f"tests/golden/{self.name}.json"

    def write(self, inputs: dict[str, Any], expected: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        script = f"scripts/golden/{self.name}.py"
        clone = f"<{self.repository.split('/')[1]} clone at {self.commit[:7]}>"
        header = {
            "repository": f"https://github.com/{self.repository}",
            "commit": self.commit,
            "file": self.file,
            "script": script,
            "command": f"{self.env}python {script} {clone} --out {self.fixture}",
            "torch": torch.__version__,
        }
        dump(self.out, header, inputs, expected, params)
        print(f"wrote {self.out} ({self.repository} {self.commit[:7]}, {self.file})")
