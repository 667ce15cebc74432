"""What a stage sees while it is built and trained: the run's environment, read-only.

:class:`RunEnv` holds what is the same for every stage of one (dataset, recipe, seed, engine settings) run,
and its :meth:`RunEnv.identity`, the run part of every stage key. :class:`StageContext` is handed to a
stage's factories: it builds architectures (and remembers which, for the stage key), places modules on the
device, gives the trained inputs of the stage, and evaluates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from harness.core.errors import UsageError
from harness.core.identity import code_identity
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.data import pipeline
from harness.data.datasets import ImageDataset
from harness.data.pipeline import EvalStream, Normalizer, TrainStream
from harness.models.staged import ArchSpec
from harness.train import engine

if TYPE_CHECKING:
    from harness.train.distributed import World
    from harness.train.objective import Objective

#: Bump when a change to the engine or pipeline changes what training produces (their source is hashed
#: into every key as well).
ENGINE_VERSION = 2
SELECTIONS = ("last", "val", "test")

ArchFactory = Callable[[ArchSpec], nn.Module]


@dataclass
class RunEnv:
    """Everything about a run that is the same for every stage in it."""

    arch: str
    dataset: ImageDataset
    recipe: Recipe
    seed: int
    device: torch.device
    reporter: Reporter
    resolve_arch: Callable[[str], tuple[ArchFactory, str | None]]  # name -> (factory, prefix argument)
    amp: bool = False
    channels_last: bool = False
    select: str = "last"
    eval_batch_size: int = 512
    world: "World | None" = None  # several ranks training this run together (torchrun)
    _streams: dict[int, TrainStream] = field(default_factory=dict, repr=False)
    _eval: dict[str, EvalStream | None] = field(default_factory=dict, repr=False)

    def identity(self) -> dict[str, Any]:
        """The run part of every stage key: data content (fingerprint computed by the harness from the
        decoded tensors, with its normalisation, subset and split), seed, selection and engine."""
        ds = self.dataset
        identity = {
            "dataset": {"fingerprint": ds.fingerprint, "mean": list(ds.mean), "std": list(ds.std),
                        "classes": list(ds.classes), **ds.notes},
            "seed": self.seed, "select": self.select, "engine": self.engine(),
            "engine_code": code_identity(engine.fit, pipeline.TrainStream),
        }
        if self.world is not None:  # sharded batches, global BatchNorm: equal to one process up to rounding only
            identity["world_size"] = self.world.size
        return identity

    def engine(self) -> dict[str, Any]:
        return {"version": ENGINE_VERSION, "device": self.device.type, "amp": self.amp,
                "channels_last": self.channels_last}

    @property
    def normalizer(self) -> Normalizer:
        return Normalizer(self.dataset.mean, self.dataset.std, self.device)

    def train_stream(self, batch_size: int) -> TrainStream:
        if batch_size not in self._streams:
            ds = self.dataset
            self._streams[batch_size] = TrainStream(ds.train_images, ds.train_labels, batch_size=batch_size,
                                                    seed=self.seed, normalizer=self.normalizer, device=self.device,
                                                    channels_last=self.channels_last)
        return self._streams[batch_size]

    def eval_stream(self, split: str) -> EvalStream | None:
        if split not in self._eval:
            ds = self.dataset
            images, labels = (ds.test_images, ds.test_labels) if split == "test" else (ds.val_images, ds.val_labels)
            self._eval[split] = None if images is None else EvalStream(
                images, labels, batch_size=self.eval_batch_size, normalizer=self.normalizer, device=self.device,
                channels_last=self.channels_last)
        return self._eval[split]

    def arch_spec(self, name: str) -> ArchSpec:
        _, arg = self.resolve_arch(name)
        ds = self.dataset
        return ArchSpec(name=name, num_classes=ds.num_classes, in_chans=ds.in_chans, input_size=ds.input_size, arg=arg)

    def place(self, module: nn.Module) -> nn.Module:
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Top-1 accuracy (%) and mean cross-entropy on the test set (and the validation split if any)."""
        was_training = model.training
        model.eval()
        out = {}
        for split in ("val", "test"):
            stream = self.eval_stream(split)
            if stream is None:
                continue
            correct, loss, n = 0, 0.0, 0
            for images, labels in stream:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    logits = model(images)
                loss += float(F.cross_entropy(logits.float(), labels, reduction="sum"))
                correct += int((logits.argmax(1) == labels).sum())
                n += labels.numel()
            out[f"{split}_acc"] = correct / n * 100
            out[f"{split}_loss"] = loss / n
        model.train(was_training)
        return out

    @torch.no_grad()
    def evaluate_objective(self, objective: "Objective", split: str = "test") -> dict[str, float]:
        """Mean of each of ``objective``'s losses over the test (or validation) set: for stages that are
        not classifiers (autoencoders, paraphrasers)."""
        stream = self.eval_stream(split)
        was_training = objective.training
        objective.eval()
        sums: dict[str, float] = {}
        n = 0
        for images, labels in stream or []:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = objective(images, labels)
            for k, v in out.losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) * labels.numel()
            n += labels.numel()
        objective.train(was_training)
        return {f"{split}_{k}": v / max(1, n) for k, v in sums.items()}


class StageContext:
    """Handed to a stage's factories (objective, data). Read-only view of the run plus the stage's inputs."""

    def __init__(self, env: RunEnv, inputs: dict[str, Any], stage_name: str) -> None:
        """``inputs``: the trained stages this stage needs, by name (``harness.train.stages.TrainedStage``)."""
        self.env = env
        self.inputs = inputs
        self.stage_name = stage_name
        self.built: list[dict[str, Any]] = []  # every architecture built, for the stage key
        self._factories: list[ArchFactory] = []

    @property
    def dataset(self) -> ImageDataset:
        return self.env.dataset

    @property
    def recipe(self) -> Recipe:
        return self.env.recipe

    @property
    def seed(self) -> int:
        return self.env.seed

    @property
    def device(self) -> torch.device:
        return self.env.device

    @property
    def normalizer(self) -> Normalizer:
        return self.env.normalizer

    @property
    def channels_last(self) -> bool:
        return self.env.channels_last

    def note(self, message: str) -> None:
        self.env.reporter.note(message)

    def model_of(self, name: str) -> nn.Module:
        """The deployed model of input stage ``name`` (a teacher, a baseline)."""
        return self.inputs[name].model

    def build_arch(self, name: str | None = None, *, seed_offset: int = 0) -> nn.Module:
        """A freshly initialised model of architecture ``name`` (the run's by default), seeded by the run's
        seed so that every method starts from the same initial weights of a given architecture."""
        name = name or self.env.arch
        factory, _ = self.env.resolve_arch(name)
        spec = self.env.arch_spec(name)
        torch.manual_seed(self.seed + seed_offset)
        model = factory(spec)
        self.built.append({"arch": name, "seed_offset": seed_offset})
        self._factories.append(factory)
        return self.env.place(model)

    def place(self, module: nn.Module) -> nn.Module:
        return self.env.place(module)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return self.env.evaluate(model)

    def evaluate_objective(self, objective: "Objective", split: str = "test") -> dict[str, float]:
        return self.env.evaluate_objective(objective, split)

    def train_stream(self, batch_size: int | None = None) -> TrainStream:
        return self.env.train_stream(batch_size or self.recipe.batch_size)

    def stream_of(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int, normalizer: Normalizer,
                  augment: bool = True) -> TrainStream:
        """A training stream over other tensors with the run's seeded batch plan (e.g. input/target pairs
        stacked channel-wise so that both get the same crop and flip)."""
        return TrainStream(images, labels, batch_size=batch_size, seed=self.seed, normalizer=normalizer,
                           device=self.device, pad=4 if augment else 0, flip=augment,
                           channels_last=self.channels_last)

    def factories(self) -> list[ArchFactory]:
        return list(self._factories)


def require_selection(env: RunEnv) -> str | None:
    """The metric ``--select`` keeps weights by (``None`` with ``--select last``)."""
    if env.select == "last":
        return None
    if env.select == "val" and env.eval_stream("val") is None:
        raise UsageError("--select val needs a validation split: add --val-split FRACTION")
    return f"{env.select}_acc"
