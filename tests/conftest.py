"""Shared helpers: tiny runs on the bundled dataset (a few hundred images, one epoch, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.plugins.manager import PluginSet, load_plugins
from harness.core.progress import Reporter
from harness.run.execute import RunOutcome, execute
from harness.run.prepare import prepare
from harness.run.request import RunRequest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "cifar10-jpg.tar.gz"

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session: the bundled dataset is decoded once."""
    return tmp_path_factory.mktemp("bench-cache")


def tiny_request(cache_dir: Path, out: Path, **overrides) -> RunRequest:
    base = dict(
        methods=["baseline"], arch="resnet8", dataset="cifar10-mini", seeds=[0], recipe="smoke",
        overrides={"epochs": 1, "batch_size": 64}, cache_dir=cache_dir, out=out, train_subset=320,
        test_subset=100, latency=False, device="cpu",
    )
    base.update(overrides)
    return RunRequest(**base)


def run_tiny(cache_dir: Path, out: Path, plugins: PluginSet | None = None, **overrides) -> RunOutcome:
    plugins = plugins or load_plugins(warn=False)
    reporter = Reporter()
    prepared = prepare(tiny_request(cache_dir, out, **overrides), plugins, reporter)
    outcome = execute(prepared, reporter)
    assert not outcome.failures, outcome.failures
    return outcome


def read_records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
