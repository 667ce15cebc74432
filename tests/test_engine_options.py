"""Engine options (issue 25): --compile and --amp on CPU are engine settings of every key and record."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import run_tiny, tiny_request
from harness.core.errors import UsageError
from harness.core.progress import Reporter
from harness.plugins.manager import load_plugins
from harness.run.execute import execute
from harness.run.prepare import prepare
import harness.train.engine as engine


def deploy_key(cache_dir: Path, tmp_path: Path, **overrides: object) -> str:
    run = prepare(tiny_request(cache_dir, tmp_path, **overrides), load_plugins(warn=False), Reporter())
    key = run.dry_runner(0).resolve(run.plan.find(0, "baseline").plan.deploy, "baseline").key
    assert key is not None
    return key


def test_compiled_and_eager_stages_have_different_keys(cache_dir: Path, tmp_path: Path) -> None:
    eager = deploy_key(cache_dir, tmp_path)
    assert deploy_key(cache_dir, tmp_path, compile="default") != eager
    assert deploy_key(cache_dir, tmp_path, compile="max-autotune") not in (
        eager,
        deploy_key(cache_dir, tmp_path, compile="default"),
    )
    run = prepare(tiny_request(cache_dir, tmp_path), load_plugins(warn=False), Reporter())
    assert "compile" not in run.env(0, Reporter()).engine()  # eager keys are the ones they always were
    with pytest.raises(UsageError, match="--compile turbo: the modes are default, reduce-overhead"):
        deploy_key(cache_dir, tmp_path, compile="turbo")


def test_amp_on_a_cpu_without_bf16_is_one_line(cache_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import harness.run.prepare as prepare_module

    monkeypatch.setattr(prepare_module, "cpu_has_bf16", lambda: False)
    with pytest.raises(UsageError) as caught:
        deploy_key(cache_dir, tmp_path, amp=True)
    assert "\n" not in str(caught.value) and "this CPU has no bf16 instructions" in str(caught.value)
    monkeypatch.setattr(prepare_module, "cpu_has_bf16", lambda: True)  # a CPU that has them: bf16 is a setting
    assert deploy_key(cache_dir, tmp_path, amp=True) != deploy_key(cache_dir, tmp_path)


@pytest.fixture
def fast_compile(monkeypatch):
    """torch.compile through dynamo with the eager backend: the same wrapping, tracing and guards as inductor,
    without its minutes of C++ compilation (the engine's plumbing is what is tested here)."""
    monkeypatch.setattr(
        engine,
        "compiled",
        lambda module, mode: module if mode is None else torch.compile(module, backend="eager", dynamic=False),
    )


def test_a_compiled_run_resumes_from_its_checkpoint(cache_dir: Path, tmp_path: Path, monkeypatch, fast_compile) -> None:
    import harness.train.executor as executor

    monkeypatch.setattr(executor, "compiled", engine.compiled)
    request = dict(compile="default", overrides={"epochs": 3, "batch_size": 64}, seeds=[1])
    (cache_dir / "datasets").mkdir(parents=True, exist_ok=True)
    for name in ("clean-cache", "cache"):  # the session's decoded dataset, separate artifact stores
        (tmp_path / name).mkdir()
        (tmp_path / name / "datasets").symlink_to(cache_dir / "datasets", target_is_directory=True)
    clean = run_tiny(tmp_path / "clean-cache", tmp_path / "clean", **request).records[0]
    assert clean["engine"]["compile"] == "default" and "warmup_seconds" in clean["curves"][0]

    class Interrupted(Reporter):  # Ctrl-C after epoch 2 is reported: its checkpoint (epoch 1) is on disk
        def end_epoch(self, row: dict) -> None:
            if row["epoch"] == 2:
                raise KeyboardInterrupt

    plugins = load_plugins(warn=False)
    killed = prepare(tiny_request(tmp_path / "cache", tmp_path / "out", **request), plugins, Reporter())
    with pytest.raises(KeyboardInterrupt):
        execute(killed, Interrupted())
    resumed = prepare(tiny_request(tmp_path / "cache", tmp_path / "out", resume=True, **request), plugins, Reporter())
    (record,) = execute(resumed, Reporter()).records
    assert record["stages"]["baseline[resnet8]"]["resumed_from_epoch"] == 1
    strip = lambda curves: [
        {k: v for k, v in row.items() if "seconds" not in k and k != "images_per_s"}  # noqa: E731
        for row in curves
    ]
    assert strip(record["curves"]) == strip(clean["curves"])  # compiled and resumed: the same numbers
