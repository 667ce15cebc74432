"""Shared helpers: tiny runs on the bundled dataset (a few hundred images, one epoch, CPU)."""

from __future__ import annotations

import json
import os
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

FAULTS = Path(__file__).resolve().parent / "faultinject"  # its sitecustomize kills a bench process on cue


def kill_at(point: str, pythonpath: str | None = None) -> dict[str, str]:
    """Environment variables under which a ``bench`` process (and its workers) sends itself a signal just before
    it trains a batch: ``point`` is ``EPOCH:BATCH[:SIGNAL]`` (1-based epoch, 0-based batch, default KILL). The
    fault is injected from outside the harness (``faultinject/sitecustomize.py``); ``pythonpath`` is kept after it."""
    rest = os.environ.get("PYTHONPATH", "") if pythonpath is None else pythonpath
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(FAULTS), rest) if p), "BENCH_TEST_KILL_AT": point}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session: the bundled dataset is decoded once."""
    return tmp_path_factory.mktemp("bench-cache")


def tiny_request(cache_dir: Path, out: Path, **overrides) -> RunRequest:
    base = dict(
        methods=["baseline"],
        arch="resnet8",
        dataset="cifar10-mini",
        seeds=[0],
        recipe="smoke",
        overrides={"epochs": 1, "batch_size": 64},
        cache_dir=cache_dir,
        out=out,
        train_subset=320,
        test_subset=100,
        latency=False,
        device="cpu",
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
