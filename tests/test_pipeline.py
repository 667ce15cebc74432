"""The shared data pipeline: per-image augmentation, identical batch streams for every method."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch.nn import functional as F

from conftest import run_tiny
from harness import hookimpl
from harness.api import Method, Objective, StageContext
from harness.data.pipeline import Normalizer, TrainStream
from harness.plugins.manager import load_plugins

CPU = torch.device("cpu")


def stream(images: torch.Tensor, labels: torch.Tensor, seed: int = 0, batch: int = 16) -> TrainStream:
    return TrainStream(
        images, labels, batch_size=batch, seed=seed, normalizer=Normalizer((0.5,) * 3, (0.25,) * 3, CPU), device=CPU
    )


def data(n: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % 10


def test_augmentation_is_per_image_crop_and_flip() -> None:
    images, labels = data()
    s = stream(images, labels)
    plan = s.plan(3)
    batch, batch_labels = next(s.epoch(3))
    for i in range(16):
        j = int(plan.order[i])
        dy, dx = int(plan.dy[i]), int(plan.dx[i])
        ref = F.pad(images[j], (4, 4, 4, 4))[:, dy : dy + 32, dx : dx + 32]
        if plan.flip[i]:
            ref = ref.flip(-1)
        torch.testing.assert_close(batch[i], (ref.float() - 127.5) / (0.25 * 255))
        assert batch_labels[i] == labels[j]
    # the draws differ between images of one batch (no single draw for the whole batch)
    assert len({(int(a), int(b)) for a, b in zip(plan.dy[:16], plan.dx[:16])}) > 1
    assert 0 < int(plan.flip.sum()) < len(plan.flip)
    assert int(plan.dy.min()) == 0 and int(plan.dy.max()) == 8


def test_stream_depends_only_on_seed_and_epoch() -> None:
    images, labels = data()
    a, b = stream(images, labels, seed=5), stream(images, labels, seed=5)
    torch.randn(100)  # global RNG use in between must not matter
    for (xa, ya), (xb, yb) in zip(a.epoch(2), b.epoch(2)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(next(a.epoch(0))[0], next(a.epoch(1))[0])
    assert not torch.equal(next(a.epoch(0))[0], next(stream(images, labels, seed=6).epoch(0))[0])


def test_trailing_single_image_batch_is_dropped() -> None:
    images, labels = data(33)
    s = stream(images, labels, batch=16)
    assert len(s) == 2 and [len(y) for _, y in s.epoch(0)] == [16, 16]


SEEN: dict[str, list[str]] = {}


class Recorder(Method):
    """Records a hash of every training batch it is given, then trains like the baseline."""

    def objective(self, ctx: StageContext) -> Objective:
        stream = ctx.train_stream()
        SEEN[self.name] = [
            hashlib.sha1(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()
            for e in range(ctx.recipe.epochs)
            for x, y in stream.epoch(e)
        ]
        return Objective(ctx.build_arch())


class RecorderPlugin:
    @staticmethod
    @hookimpl
    def bench_register_methods(register):
        register("rec-a", Recorder)
        register("rec-b", Recorder)


def test_two_methods_in_one_run_see_identical_batches(cache_dir: Path, tmp_path: Path) -> None:
    plugins = load_plugins(entry_points=False, extra=[("recorder", RecorderPlugin)], warn=False)
    SEEN.clear()
    run_tiny(
        cache_dir, tmp_path, plugins=plugins, methods=["rec-a", "rec-b"], overrides={"epochs": 2, "batch_size": 64}
    )
    assert len(SEEN["rec-a"]) == 2 * 5 and SEEN["rec-a"] == SEEN["rec-b"]
