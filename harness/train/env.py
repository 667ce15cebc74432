"""The run's environment: what is the same for every stage of one (dataset, recipe, seed, engine) run.

:class:`RunEnv` is handed to a method's report and, through :class:`~harness.train.stage.StageContext`, to
its stage factories (read-only by convention). Its :meth:`RunEnv.identity` is the run part of every stage
key. The evaluation loops live in :mod:`harness.train.evaluation`, the streams in
:class:`harness.data.pipeline.DataStreams`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn

from harness.core.errors import UsageError
from harness.core.identity import code_identity
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.data import pipeline
from harness.data.datasets import ImageDataset
from harness.data.pipeline import DataStreams, EvalStream, Normalizer, TrainStream
from harness.models.levels import ArchSpec
from harness.train import engine, evaluation

M = TypeVar("M", bound=nn.Module)

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
    #: test-time augmentation of the last epoch's evaluation (``harness.train.evaluation.TTA_LEVELS``)
    tta: str = "none"
    eval_batch_size: int = 512
    world: "World | None" = None  # several ranks training this run together (torchrun)
    compile: str | None = None  # torch.compile mode of the training step and evaluation; None: eager
    #: The numerics profile's identity (``harness.core.numerics.Profile.identity``; empty for native).
    numerics: dict[str, Any] = field(default_factory=dict)
    #: The platform this process computes stages on (``harness.results.fingerprint.computing_platform``),
    #: saved with every stage it trains; empty where the caller did not measure it (then ``unknown``).
    platform: dict[str, Any] = field(default_factory=dict)
    _streams: DataStreams | None = field(default=None, repr=False)

    def identity(self) -> dict[str, Any]:
        """The run part of every stage key: data content (fingerprint computed by the harness from the
        decoded tensors, with its normalisation, subset and split), seed, selection and engine."""
        ds = self.dataset
        identity = {
            "dataset": {
                "fingerprint": ds.fingerprint,
                "mean": list(ds.mean),
                "std": list(ds.std),
                "classes": list(ds.classes),
                **ds.notes,
            },
            "seed": self.seed,
            "select": self.select,
            "engine": self.engine(),
            "engine_code": code_identity(engine.fit, pipeline.TrainStream, evaluation.accuracy),
        }
        if self.world is not None:  # sharded batches, global BatchNorm: equal to one process up to rounding only
            identity["world_size"] = self.world.size
        if self.tta != "none":  # only when set: the keys of runs without it are those they always were
            identity["tta"] = self.tta
        return identity

    def engine(self) -> dict[str, Any]:
        """The engine settings, as records and stage keys hold them (``compile`` and ``numerics`` only when
        set, so that the keys of eager, native runs are those they always were). A pinning numerics profile
        enters here, hence every stage key: a stage computed natively never serves a pinned run. The native
        instruction set does not (see docs/ci.md): native stages are shared across the machines of a cache,
        and each carries the platform that computed it."""
        settings: dict[str, Any] = {
            "version": ENGINE_VERSION,
            "device": self.device.type,
            "amp": self.amp,
            "channels_last": self.channels_last,
        }
        if self.compile:
            settings["compile"] = self.compile
        if self.numerics:
            settings["numerics"] = self.numerics
        return settings

    @property
    def streams(self) -> DataStreams:
        if self._streams is None:
            self._streams = DataStreams(
                self.dataset,
                seed=self.seed,
                device=self.device,
                channels_last=self.channels_last,
                eval_batch_size=self.eval_batch_size,
            )
        return self._streams

    @property
    def normalizer(self) -> Normalizer:
        return self.streams.normalizer

    def train_stream(self, batch_size: int, recipe: Recipe | None = None) -> TrainStream:
        """The training stream of ``batch_size``, augmented as ``recipe`` (the run's by default) says."""
        r = recipe or self.recipe
        return self.streams.train(batch_size, pad=r.translate, flip=r.flip, pad_mode=r.pad_mode)

    def eval_stream(self, split: str) -> EvalStream | None:
        return self.streams.eval(split)

    def arch_spec(self, name: str) -> ArchSpec:
        _, arg = self.resolve_arch(name)
        ds = self.dataset
        return ArchSpec(name=name, num_classes=ds.num_classes, in_chans=ds.in_chans, input_size=ds.input_size, arg=arg)

    def place(self, module: M) -> M:
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def evaluate(self, model: nn.Module, *, final: bool = False) -> dict[str, float]:
        """Top-1 accuracy (%) and mean cross-entropy on the validation split (if any) and the test set.

        ``final`` (the last epoch's evaluation) with test-time augmentation (``tta``): the numbers under it,
        with those of the plain evaluation beside them (``test_acc_plain``, ...) and ``tta`` naming it."""
        streams = {split: s for split in ("val", "test") if (s := self.eval_stream(split)) is not None}
        plain = evaluation.accuracy(model, streams, device_type=self.device.type, amp=self.amp)
        if not final or self.tta == "none":
            return plain
        out = evaluation.accuracy(model, streams, device_type=self.device.type, amp=self.amp, tta=self.tta)
        return {**out, **{f"{k}_plain": v for k, v in plain.items()}}

    def evaluate_objective(self, objective: "Objective", split: str = "test") -> dict[str, float]:
        """Mean of each of ``objective``'s losses over the test (or validation) set: for stages that are
        not classifiers (autoencoders, paraphrasers)."""
        return evaluation.objective_losses(
            objective, self.eval_stream(split) or [], split, device_type=self.device.type, amp=self.amp
        )


def require_selection(env: RunEnv) -> str | None:
    """The metric ``--select`` keeps weights by (``None`` with ``--select last``)."""
    if env.select == "last":
        return None
    if env.select == "val" and env.eval_stream("val") is None:
        raise UsageError("--select val needs a validation split: add --val-split FRACTION")
    return f"{env.select}_acc"
