"""CRD: the loss, the memory bank and the gradients against RepDistiller's (golden fixture), the negatives, the
sample indices of the shared pipeline, and a tiny real run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import run_tiny
from golden import load
from harness.core.errors import UsageError
from harness.data.distortions import DistortedTrainStream, Distortion
from harness.data.pipeline import Normalizer, TrainStream
from harness.models.levels import ArchSpec
from harness.plugins.manager import load_plugins
from plugins.methods.crd import CRDHead, NegativeSampler

PLUGINS = load_plugins(entry_points=False, warn=False)


def test_crd_loss_memory_and_gradients_equal_repdistillers() -> None:
    g = load("crd")
    p, x = g.params, g.inputs
    head = CRDHead(x["f_s1"].shape[1], x["f_t1"].shape[1], p["feat_dim"], p["n_data"], p["nce_t"], p["nce_m"])
    with torch.no_grad():
        for name in ("embed_s", "embed_t"):
            getattr(head, name).linear.weight.copy_(x[f"{name}.weight"])
            getattr(head, name).linear.bias.copy_(x[f"{name}.bias"])
        head.memory.memory_s.copy_(x["memory_s"])
        head.memory.memory_t.copy_(x["memory_t"])
    for step in (1, 2):
        f_s = x[f"f_s{step}"].clone().requires_grad_(True)
        loss = head(f_s, x[f"f_t{step}"], x[f"index{step}"].long(), x[f"contrast{step}"].long())
        torch.testing.assert_close(loss, g.expected[f"loss{step}"])
        if step == 1:
            loss.backward()
            torch.testing.assert_close(f_s.grad, g.expected["grad.f_s1"])
            for name in ("embed_s", "embed_t"):
                linear = getattr(head, name).linear
                torch.testing.assert_close(linear.weight.grad, g.expected[f"grad.{name}.weight"])
                torch.testing.assert_close(linear.bias.grad, g.expected[f"grad.{name}.bias"])
            torch.testing.assert_close(head.memory.z, g.expected["z"])
        torch.testing.assert_close(head.memory.memory_s, g.expected[f"memory_s{step}"])
        torch.testing.assert_close(head.memory.memory_t, g.expected[f"memory_t{step}"])


def test_negatives_are_other_classes_first_column_the_image_itself() -> None:
    train_labels = torch.arange(60) % 3  # 40 negatives per class
    labels, index = torch.tensor([0, 1, 2, 1]), torch.tensor([3, 7, 5, 10])
    torch.manual_seed(0)
    drawn = NegativeSampler(train_labels, 30)(labels, index)
    assert drawn.shape == (4, 31) and torch.equal(drawn[:, 0], index)
    assert bool((train_labels[drawn[:, 1:]] != labels[:, None]).all())
    assert all(len(row.unique()) == 30 for row in drawn[:, 1:])  # without replacement: 30 <= 40 negatives
    torch.manual_seed(0)
    many = NegativeSampler(train_labels, 100)(labels, index)  # more than 40: with replacement, as the reference
    assert many.shape == (4, 101) and bool((train_labels[many[:, 1:]] != labels[:, None]).all())


def test_indexed_epoch_gives_the_same_batches_and_their_positions() -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(50)  # label = position, so the indices can be checked against the labels
    stream = TrainStream(
        images,
        labels,
        batch_size=16,
        seed=3,
        normalizer=Normalizer((0.5,) * 3, (0.25,) * 3, torch.device("cpu")),
        device=torch.device("cpu"),
    )
    for (x, y), (xi, yi, idx) in zip(stream.epoch(2), stream.epoch(2, indexed=True)):
        assert torch.equal(x, xi) and torch.equal(y, yi) and torch.equal(idx, yi)
    seen = torch.cat([idx for _, _, idx in stream.epoch(0, indexed=True)])
    assert sorted(seen.tolist()) == list(range(50))
    noisy = DistortedTrainStream(
        images,
        labels,
        distortion=Distortion("noise", 0.1),
        batch_size=16,
        seed=3,
        normalizer=stream.normalizer,
        device=torch.device("cpu"),
    )
    for (x, _), (xi, yi, idx) in zip(noisy.epoch(1), noisy.epoch(1, indexed=True)):
        assert torch.equal(x, xi) and torch.equal(idx, yi)


def test_crd_objective_is_handed_every_training_image_index_once_per_epoch(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plugins.methods import crd

    seen: list[torch.Tensor] = []
    forward = crd.CRDObjective.forward

    def spy(self, images, labels, indices=None):
        seen.append(indices.clone())
        assert torch.equal(self.sampler.train_labels[indices], labels)  # the indices name these very images
        return forward(self, images, labels, indices)

    monkeypatch.setattr(crd.CRDObjective, "forward", spy)
    outcome = run_tiny(cache_dir, tmp_path, methods=["crd"], teacher="resnet14", options=["crd.nce_k=256"])
    (rec,) = outcome.records
    assert sorted(torch.cat(seen).tolist()) == list(range(320))  # 320 training images, one epoch
    assert rec["metrics"]["params_extra"] == (64 + 1) * 128 * 2  # two linear embeddings 64 -> 128
    assert rec["metrics"]["params_deployed"] == 78_042
    assert rec["curves"][-1]["train_crd"] > 0 and "train_kd" not in rec["curves"][-1]


def test_crd_memory_has_one_row_per_training_image_and_the_paper_defaults() -> None:
    method = PLUGINS.methods.resolve("crd").obj("crd")
    assert {k: method.opts[k] for k in ("feat_dim", "nce_k", "nce_t", "nce_m", "ce_weight", "weight", "kd_weight")} == {
        "feat_dim": 128,
        "nce_k": 16384,
        "nce_t": 0.07,
        "nce_m": 0.5,
        "ce_weight": 1.0,
        "weight": 0.8,
        "kd_weight": 0.0,
    }
    arch = PLUGINS.archs.resolve("resnet8").obj
    student = arch(ArchSpec("resnet8", 10))
    teacher = PLUGINS.archs.resolve("resnet32x4").obj(ArchSpec("resnet32x4", 10))
    objective = method.make_objective(student, teacher, torch.arange(100) % 10)
    assert objective.crd.memory.memory_s.shape == (100, 128) and objective.crd.embed_t.linear.in_features == 256
    with pytest.raises(UsageError, match="single class"):
        method.make_objective(student, teacher, torch.zeros(10, dtype=torch.long))


def test_checkpoint_keeps_the_banks_and_z_so_a_resumed_stage_continues_them() -> None:
    method = PLUGINS.methods.resolve("crd").obj("crd")
    net = PLUGINS.archs.resolve("resnet8").obj
    objective = method.make_objective(net(ArchSpec("resnet8", 10)), net(ArchSpec("resnet8", 10)), torch.arange(50) % 10)
    keys = set(objective.state_dict())
    assert {"crd.memory.memory_s", "crd.memory.memory_t", "crd.memory.z"} <= keys
    assert not any("train_labels" in k for k in keys)  # derived from the dataset, not state
    assert objective.extra_params() == 2 * (64 + 1) * 128  # the two embeddings: training-time extras
