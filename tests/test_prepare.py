"""prepare() returns a value it does not change afterwards: a variant of a prepared run is a copy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conftest import tiny_request
from harness.core.progress import Reporter
from harness.plugins.manager import load_plugins
from harness.run.prepare import prepare


def test_a_prepared_run_is_frozen_and_a_variant_is_a_copy(tmp_path: Path, cache_dir: Path) -> None:
    run = prepare(tiny_request(cache_dir, tmp_path), load_plugins(warn=False), Reporter())
    assert run.dataset is not None and run.plan.seeds == [0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.dataset = None  # type: ignore[misc]  # mutating a frozen run is the test
    other = dataclasses.replace(run, request=dataclasses.replace(run.request, study={"name": "s"}))
    assert other.request.study == {"name": "s"} and run.request.study is None
