"""EncodeNet's autoencoder stage optimised on its own terms (issue 33): its learning rate (``ae_lr``), no label
smoothing, the recipe's augmentation; keyed by the recipe it trains with; a diverged autoencoder fails the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from conftest import run_tiny, tiny_request
from harness.cli import main
from harness.core.errors import UsageError
from harness.core.progress import Reporter
from harness.plugins.manager import load_plugins
from harness.run.prepare import prepare
from harness.train.engine import airbench_factor
from harness.train.executor import StageRunner
from harness.data.pipeline import TrainStream
from harness.train.stage import Stage

PLUGINS = load_plugins(entry_points=False, warn=False)
#: the fast recipe's pieces that suit ResNet-8 (no whitening layer), on top of the smoke recipe
FAST_PIECES = {
    "schedule": "airbench",
    "averaging": "lookahead",
    "label_smoothing": 0.2,
    "momentum": 0.85,
    "nesterov": True,
    "translate": 2,
    "pad_mode": "reflect",
    "flip": "alternating",
}
QUICK = ["encodenet.target=class", "encodenet.figures=false"]


def autoencoder_stage(cache_dir: Path, out: Path, options: list[str], **overrides: object) -> tuple[Stage, str | None]:
    """EncodeNet's planned autoencoder stage and its provisional key (a dry resolution: nothing trains; the
    baseline it needs stands in by its own plan key)."""
    req = tiny_request(cache_dir, out, methods=["encodenet"], options=[*QUICK, *options], **overrides)
    run = prepare(req, PLUGINS, Reporter())
    (entry,) = [e for e in run.plan.of_seed(0) if e.name == "encodenet"]
    ae = entry.plan.deploy.needs["autoencoder"]
    return ae, StageRunner(run.env(0, Reporter()), run.store, dry=True).resolve(ae, entry.name).plan_key


def test_ae_lr_enters_the_autoencoder_key_only_when_it_changes_its_recipe(tmp_path: Path, cache_dir: Path) -> None:
    fast = {"epochs": 1, "batch_size": 64, **FAST_PIECES}
    stage, inherited = autoencoder_stage(cache_dir, tmp_path, [], overrides=fast)
    assert stage.recipe is not None and stage.recipe.lr == 0.05  # the smoke recipe's
    assert autoencoder_stage(cache_dir, tmp_path, ["encodenet.ae_lr=0.05"], overrides=fast)[1] == inherited  # = --lr
    own, key = autoencoder_stage(cache_dir, tmp_path, ["encodenet.ae_lr=0.02"], overrides=fast)
    assert key != inherited and own.recipe is not None and own.recipe.lr == 0.02
    # what the harness hashes of the stage's recipe: no label smoothing (an MSE without labels), whatever the run's
    smoothed, _ = autoencoder_stage(cache_dir, tmp_path, [], overrides={**fast, "label_smoothing": 0.1})
    assert smoothed.recipe is not None and "label_smoothing" not in smoothed.recipe.as_dict()
    assert smoothed.recipe.as_dict() == stage.recipe.as_dict()
    # every other piece is the run's: the averaging, the schedule, the augmentation of its batches
    for name, value in FAST_PIECES.items():
        if name != "label_smoothing":
            assert stage.recipe.as_dict()[name] == value, name
    # without the fast pieces the recipe is the run's with the autoencoder's epochs: the keys it always had
    plain, _ = autoencoder_stage(cache_dir, tmp_path, [], overrides={"epochs": 3})
    assert plain.recipe == prepare(tiny_request(cache_dir, tmp_path), PLUGINS, Reporter()).recipe.with_overrides(
        epochs=5
    )


def test_ae_lr_is_declared_with_its_range() -> None:
    option = PLUGINS.methods.resolve("encodenet").obj.options["ae_lr"]
    assert option.default == 0.0 and option.limits is not None and option.limits.short() == ">= 0"
    assert main(["list", "methods", "encodenet"]) == 0


@pytest.mark.parametrize("bad", ["-0.1", "nan", "inf", "fast"])
def test_bad_ae_lr_refused_when_planning(tmp_path: Path, cache_dir: Path, bad: str) -> None:
    with pytest.raises(UsageError, match="option encodenet.ae_lr[: ]"):
        prepare(
            tiny_request(cache_dir, tmp_path, methods=["encodenet"], options=[f"encodenet.ae_lr={bad}"]),
            PLUGINS,
            Reporter(),
        )


def test_autoencoder_trains_at_ae_lr_under_the_fast_pieces(tmp_path: Path, cache_dir: Path) -> None:
    """A real run with the fast recipe's pieces: the baseline and the head at the run's lr, the autoencoder at
    ``ae_lr``, under the same per-step schedule; the record says which lr the autoencoder had."""
    outcome = run_tiny(
        cache_dir,
        tmp_path,
        methods=["encodenet"],
        options=[*QUICK, "encodenet.ae_lr=0.02"],
        overrides={"epochs": 1, "batch_size": 64, **FAST_PIECES},
    )
    (record,) = [r for r in outcome.records if r["method"]["name"] == "encodenet"]
    stages = record["stages"]
    batches = 5  # 320 images at batch 64

    def lrs(stage: str, base: float) -> tuple[list[float], list[float]]:
        curves = stages[stage]["curves"]
        total = len(curves) * batches  # the last step of each epoch sets the lr its row records
        return [row["lr"] for row in curves], [
            base * airbench_factor((e + 1) * batches - 1, total) for e in range(len(curves))
        ]

    recorded, expected = lrs("autoencoder", 0.02)
    assert len(recorded) == 2 and recorded == pytest.approx(expected)  # 5/3 of one epoch: two
    for stage in ("baseline[resnet8]", "head"):
        recorded, expected = lrs(stage, 0.05)  # the smoke recipe's lr
        assert recorded == pytest.approx(expected)
    assert record["info"]["autoencoder_lr"] == 0.02 and record["recipe"]["lr"] == 0.05
    assert all(v is not None and v == v for v in record["info"]["reconstruction_curve"])  # finite


def test_a_diverged_autoencoder_fails_the_run_naming_ae_lr(capsys, tmp_path: Path, cache_dir: Path) -> None:
    """ae_lr 1e6 diverges: exit 1, one error line that names the option to lower, a failed record with the
    baseline that did train, and no EncodeNet result (the baseline's record is a result of its own)."""
    out = tmp_path / "out"
    argv = [
        "run",
        *("--methods", "encodenet", "--arch", "resnet8", "--dataset", "cifar10-mini", "--recipe", "smoke"),
        *("--epochs", "1", "--train-subset", "320", "--test-subset", "100", "--batch-size", "64"),
        *("--averaging", "lookahead", "--schedule", "airbench", "--label-smoothing", "0.2"),
        *[a for opt in [*QUICK, "encodenet.ae_lr=1e6"] for a in ("--opt", opt)],
        *("--device", "cpu", "--no-latency", "--quiet", "--cache-dir", str(cache_dir), "--out", str(out)),
    ]
    assert main(argv) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: error: ")]
    (line,) = errors
    assert "encodenet/autoencoder: loss 'reconstruction' is" in line
    assert "the run diverged: lower --opt encodenet.ae_lr (now 1e6)" in line
    assert not [p for p in out.glob("*.json") if "__encodenet__" in p.name]  # no result
    (failed,) = [json.loads(p.read_text()) for p in (out / "failed").glob("*.json")]
    assert failed["status"] == "failed" and "metrics" not in failed and failed["error"] in line
    assert list(failed["stages"]) == ["baseline[resnet8]"]  # trained and kept; no autoencoder, no head


def test_paired_batches_are_augmented_as_the_recipe_says(tmp_path: Path, cache_dir: Path) -> None:
    """``StageContext.stream_of`` (EncodeNet's input/target pairs): the recipe's translation, padding and flip;
    the CIFAR-standard 4-pixel zero-padded crop and random flip under a recipe without the fast pieces."""
    from harness.train.stage import StageContext

    def stream(augment: bool, **overrides: object) -> tuple[TrainStream, torch.Tensor]:
        run = prepare(tiny_request(cache_dir, tmp_path, overrides={"epochs": 1, **overrides}), PLUGINS, Reporter())
        env = run.env(0, Reporter())
        images = env.dataset.train_images[:8]
        pairs = torch.cat([images, images.flip(0)], dim=1)
        return StageContext(env, {}, "autoencoder").stream_of(
            pairs, env.dataset.train_labels[:8], batch_size=4, normalizer=lambda x: x.float(), augment=augment
        ), images

    fast, images = stream(True, translate=2, pad_mode="reflect", flip="alternating")
    assert (fast.pad, fast.flip_mode) == (2, "alternating")
    torch.testing.assert_close(fast.padded[:, :3], F.pad(images.float(), (2, 2, 2, 2), mode="reflect").to(images.dtype))
    plain, _ = stream(True)
    assert (plain.pad, plain.flip_mode) == (4, "random") and int(plain.padded[:, :, :4].abs().sum()) == 0
    off, _ = stream(False, translate=2, flip="alternating")
    assert (off.pad, off.flip_mode) == (0, "none")
    batch, _ = next(off.epoch(0))
    assert batch.shape == (4, 6, 32, 32)
