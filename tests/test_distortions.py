"""Issue 13: distortions as one shared module, ``--eval-noise``/``--eval-distort`` recorded for every method,
and tables/plots that show them (with the deployed size against the baseline's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import run_tiny
from harness.core.errors import UsageError
from harness.data.distortions import (
    DistortedTrainStream,
    Distortion,
    distorted_accuracy,
    noise_levels,
    parse_distortions,
)
from harness.data.pipeline import Normalizer, TrainStream
from harness.cli import main

CPU = torch.device("cpu")


def test_specs_parse_and_bad_ones_are_one_line_errors() -> None:
    assert [d.name for d in parse_distortions("noise:0.10, blur:1,noise:0.1")] == ["noise:0.1", "blur:1"]
    assert [d.name for d in noise_levels("0.05,0.2")] == ["noise:0.05", "noise:0.2"]
    for bad, message in (
        ("snow:1", "unknown distortion 'snow'"),
        ("noise", "expected KIND:LEVEL"),
        ("noise:x", "is not a number"),
        ("noise:-1", "finite number >= 0"),
        (",", "no distortion"),
    ):
        with pytest.raises(UsageError, match=message):
            parse_distortions(bad)


def test_noise_is_deterministic_per_seed_and_batch_and_blur_smooths() -> None:
    images = torch.rand(4, 3, 8, 8)
    noise = Distortion("noise", 0.1)
    a = noise.apply(images, noise.generator(0, "test", 0))
    assert torch.equal(a, noise.apply(images, noise.generator(0, "test", 0)))
    assert not torch.equal(a, noise.apply(images, noise.generator(1, "test", 0)))  # another seed
    assert not torch.equal(a, noise.apply(images, noise.generator(0, "test", 1)))  # another batch
    assert a.min() >= 0 and a.max() <= 1 and 0.05 < float((a - images).std()) < 0.12
    blur = Distortion("blur", 1.0)
    smooth = blur.apply(images, blur.generator(0, "test", 0))
    assert smooth.shape == images.shape and float(smooth.std()) < float(images.std())


class FlatDetector(nn.Module):
    """Class 0 for flat images, class 1 for images with pixel-to-pixel variation (noise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rough = (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3))
        return torch.stack([0.01 - rough, rough - 0.01], dim=1)


def test_distorted_accuracy_reaches_the_model_and_is_deterministic() -> None:
    images = torch.full((10, 3, 8, 8), 128, dtype=torch.uint8)  # flat grey: class 0
    labels = torch.zeros(10, dtype=torch.long)
    norm = Normalizer((0.5,) * 3, (0.25,) * 3, CPU)
    kwargs = dict(normalizer=norm, seed=0, device=CPU, batch_size=4)
    model = FlatDetector()
    assert distorted_accuracy(model, images, labels, Distortion("noise", 0.0), **kwargs) == 100.0
    assert distorted_accuracy(model, images, labels, Distortion("blur", 2.0), **kwargs) == 100.0  # flat stays flat
    assert distorted_accuracy(model, images, labels, Distortion("noise", 0.2), **kwargs) == 0.0


def test_distorted_train_stream_keeps_the_runs_batches_and_distorts_them() -> None:
    images = torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(20) % 10
    norm = Normalizer((0.5,) * 3, (0.25,) * 3, CPU)
    plain = TrainStream(images, labels, batch_size=8, seed=3, normalizer=norm, device=CPU)
    noisy = DistortedTrainStream(
        images, labels, distortion=Distortion("noise", 0.1), batch_size=8, seed=3, normalizer=norm, device=CPU
    )
    for (x, y), (xn, yn), (xn2, _) in zip(plain.epoch(1), noisy.epoch(1), noisy.epoch(1)):
        assert torch.equal(y, yn) and torch.equal(xn, xn2)  # same order; the same noise when replayed
        assert 0.05 < float((xn - x).std() * 0.25) < 0.12  # noise of sigma 0.1 in pixel units, after normalising
    resumed = list(noisy.epoch(1, start_batch=1))[0][0]
    assert torch.equal(resumed, list(noisy.epoch(1))[1][0])  # a resumed epoch sees the same noisy batch


def test_eval_noise_is_recorded_for_every_method_and_shown(tmp_path: Path, cache_dir: Path, capsys) -> None:
    out = tmp_path / "runs"
    outcome = run_tiny(
        cache_dir,
        out,
        methods=["baseline", "kd"],
        teacher="resnet8",
        eval_distortions=noise_levels("0.05,0.5") + parse_distortions("blur:1"),
    )
    for rec in outcome.records:
        measured = rec["metrics"]["top1_distorted"]
        assert set(measured) == {"noise:0.05", "noise:0.5", "blur:1"}
        assert all(0 <= v <= 100 for v in measured.values())
    again = run_tiny(cache_dir, tmp_path / "again", methods=["baseline"], eval_distortions=noise_levels("0.05,0.5"))
    first = next(r for r in outcome.records if r["method"]["name"] == "baseline")["metrics"]["top1_distorted"]
    assert again.records[0]["metrics"]["top1_distorted"] == {k: first[k] for k in ("noise:0.05", "noise:0.5")}
    assert main(["table", str(out), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["method"]: sorted(r["top1_distorted"]) for r in rows} == {
        "baseline": ["blur:1", "noise:0.05", "noise:0.5"],
        "kd": ["blur:1", "noise:0.05", "noise:0.5"],
    }
    assert main(["table", str(out), "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert {"top1_noise:0.05_mean", "top1_blur:1_std", "params_x_baseline", "macs_x_baseline"} <= set(header)
    assert main(["table", str(out), "--format", "markdown"]) == 0
    shown = capsys.readouterr().out
    assert "top-1 noise:0.05 (%)" in shown and "params / MACs (x baseline)" in shown
    assert main(["plot", str(out), "--out", str(tmp_path / "plots"), "--no-curves"]) == 0
    assert sorted(p.name.split("__")[0] for p in (tmp_path / "plots").glob("*.png")) == ["efficiency", "robustness"]


def test_eval_noise_resumes_records_without_it(tmp_path: Path, cache_dir: Path) -> None:
    """A finished record without a requested distortion is measured again (stages from the cache)."""
    run_tiny(cache_dir, tmp_path)
    outcome = run_tiny(cache_dir, tmp_path, resume=True, eval_distortions=noise_levels("0.1"))
    assert "noise:0.1" in outcome.records[0]["metrics"]["top1_distorted"]
    assert outcome.records[0]["stages"]["baseline[resnet8]"]["origin"] == "cache"


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--eval-noise", "0.1,abc", "argument --eval-noise: distortion 'noise:abc': level 'abc' is not a number"),
        ("--eval-distort", "fog:1", "argument --eval-distort: unknown distortion 'fog'"),
    ],
)
def test_bad_eval_distortions_are_refused_before_training(
    capsys, tmp_path: Path, flag: str, value: str, expected: str
) -> None:
    code = main(
        [
            "run",
            "--methods",
            "baseline",
            "--arch",
            "resnet8",
            "--dataset",
            "cifar10-mini",
            flag,
            value,
            "--out",
            str(tmp_path),
            "--cache-dir",
            str(tmp_path / "c"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1
