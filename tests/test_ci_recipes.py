"""The CI recipes (.ci/gate, examples/ci/*) run commands bench accepts, at one budget, against a reference
that matches it."""

from __future__ import annotations

import json
import re
import shlex
from importlib import resources
from pathlib import Path

import pytest

from harness.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
FILES = (".ci/gate", "examples/ci/bench-gate.sh", "examples/ci/bench-gate.yml")


def bench_commands(path: Path) -> list[list[str]]:
    """Every ``bench ...`` command of a recipe, its shell variables replaced by sample values."""
    text = path.read_text()
    budget = re.search(r"BUDGET: (.+)|budget=\((.+)\)", text)
    flags = (budget.group(1) or budget.group(2)) if budget else ""
    commands = []
    for line in text.splitlines():
        line = line.strip().removeprefix("- run:").removeprefix("run:").strip()
        found = re.match(r"^(?:\$bench|bench) (.*)$", line)
        if not found:
            continue
        rest = (
            found.group(1)
            .replace('"${budget[@]}"', flags)
            .replace("$BUDGET", flags)
            .replace('"$@"', "--junit report.xml")
        )
        rest = re.sub(r'"?\$\{?(\w+)\}?"?', "x", rest)
        commands.append(shlex.split(rest))
    return commands


@pytest.mark.parametrize("name", FILES)
def test_recipe_commands_parse(name: str) -> None:
    commands = bench_commands(REPO / name)
    assert {c[0] for c in commands} == {"reproduce", "check"}, commands
    for argv in commands:
        build_parser().parse_args(argv)  # a UsageError (bad option) fails the test


def budget_of(argv: list[str]) -> dict[str, str]:
    keep = ("--train-subset", "--epochs", "--threads", "--test-subset", "--numerics")
    return {k: argv[argv.index(k) + 1] for k in keep if k in argv}


def test_recipes_share_the_gate_budget_and_the_bundled_reference_matches_it() -> None:
    gate = next(c for c in bench_commands(REPO / ".ci/gate") if c[0] == "reproduce")
    for name in FILES[1:]:
        for argv in bench_commands(REPO / name):
            if argv[0] == "reproduce":
                assert budget_of(argv) == budget_of(gate), (name, argv)
    seeds = [int(s) for s in gate[gate.index("--seeds") + 1].split(",")]
    doc = json.loads((resources.files("harness.results.reference_data") / "smoke.json").read_text())
    images = int(budget_of(gate)["--train-subset"])
    for row in doc["rows"]:
        assert set(seeds) <= {s["seed"] for s in row["seeds"]}, row["method"]  # the exact check has its seeds
        assert row["setup"]["data"]["train"] == images and row["setup"]["data"]["train_subset"] == images
    assert doc["platform"]["threads"] == int(budget_of(gate)["--threads"])
    # the reference was computed under the gate's numerics profile, every library pinned as the profile says
    assert doc["platform"]["numerics"]["profile"] == budget_of(gate)["--numerics"] == "portable"
    assert {doc["platform"]["numerics"][lib] for lib in ("aten", "onednn", "mkl")} == {"AVX2"}
