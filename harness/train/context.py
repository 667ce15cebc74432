"""The run context: what a method sees of a run, and the shared stages (baseline, teacher) it may ask for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from harness.train.artifacts import ArtifactStore, config_key, state_digest
from harness.data.datasets import ImageDataset
from harness.train.engine import fit
from harness.core.errors import UsageError
from harness.models.staged import ArchSpec
from harness.data.pipeline import EvalStream, Normalizer, TrainStream
from harness.core.progress import Reporter
from harness.core.recipes import Recipe

if TYPE_CHECKING:
    from harness.methods.contract import Objective
    from harness.plugins.manager import PluginSet

#: Bump when a change to the engine or pipeline changes what training produces: old artifacts then no
#: longer match any key and are retrained instead of silently reused.
ENGINE_VERSION = 1
SELECTIONS = ("last", "val", "test")


@dataclass
class TrainedStage:
    """A trained stage: its history and where it came from."""

    name: str
    key: str
    history: list[dict]
    seconds: float
    reused: bool
    model: nn.Module | None = None
    info: dict = field(default_factory=dict)
    digest: str = ""  # content hash of the trained weights: downstream stages are keyed by it

    def final(self, metric: str = "test_acc") -> float | None:
        return self.history[-1].get(metric) if self.history else None


@dataclass
class RunSettings:
    """Everything about a run that is the same for every method in it."""

    arch: str
    dataset: ImageDataset
    recipe: Recipe
    seed: int
    device: torch.device
    store: ArtifactStore
    reporter: Reporter
    teacher_arch: str | None = None
    teacher_checkpoint: Path | None = None
    amp: bool = False
    channels_last: bool = False
    resume: bool = False
    retrain: bool = False
    select: str = "last"
    eval_batch_size: int = 512


class RunContext:
    """Handed to a method's hooks. Builds models, trains stages (cached and resumable), evaluates."""

    def __init__(self, settings: RunSettings, plugins: "PluginSet", method_name: str) -> None:
        self.s = settings
        self.plugins = plugins
        self.method_name = method_name
        self.stage_log: dict[str, dict[str, Any]] = {}
        self.teacher_stage: TrainedStage | None = None
        self._streams: dict[int, TrainStream] = {}
        norm = Normalizer(settings.dataset.mean, settings.dataset.std, settings.device)
        self.normalizer = norm
        ds = settings.dataset
        cl = settings.channels_last
        self.test_stream = EvalStream(ds.test_images, ds.test_labels, batch_size=settings.eval_batch_size,
                                      normalizer=norm, device=settings.device, channels_last=cl)
        self.val_stream = None if ds.val_images is None else EvalStream(
            ds.val_images, ds.val_labels, batch_size=settings.eval_batch_size, normalizer=norm,
            device=settings.device, channels_last=cl)

    # ---- facts -----------------------------------------------------------------------------------------

    @property
    def dataset(self) -> ImageDataset:
        return self.s.dataset

    @property
    def recipe(self) -> Recipe:
        return self.s.recipe

    @property
    def seed(self) -> int:
        return self.s.seed

    @property
    def device(self) -> torch.device:
        return self.s.device

    @property
    def has_teacher(self) -> bool:
        return self.s.teacher_arch is not None or self.s.teacher_checkpoint is not None

    def note(self, message: str) -> None:
        self.s.reporter.note(message)

    # ---- models and data ---------------------------------------------------------------------------------

    def arch_spec(self, name: str | None = None) -> ArchSpec:
        name = name or self.s.arch
        resolved = self.plugins.archs.resolve(name)
        ds = self.dataset
        return ArchSpec(name=name, num_classes=ds.num_classes, in_chans=ds.in_chans, input_size=ds.input_size,
                        arg=resolved.arg)

    def build_arch(self, name: str | None = None, *, seed_offset: int = 0) -> nn.Module:
        """A freshly initialised model of architecture ``name`` (the run's by default), seeded by the run's
        seed so that every method starts from the same initial weights of a given architecture."""
        spec = self.arch_spec(name)
        torch.manual_seed(self.seed + seed_offset)
        model = self.plugins.archs.resolve(spec.name).obj(spec)
        return self.place(model)

    def place(self, module: nn.Module) -> nn.Module:
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.s.channels_last else module

    def train_stream(self, batch_size: int | None = None) -> TrainStream:
        bs = batch_size or self.recipe.batch_size
        if bs not in self._streams:
            ds = self.dataset
            self._streams[bs] = TrainStream(ds.train_images, ds.train_labels, batch_size=bs, seed=self.seed,
                                            normalizer=self.normalizer, device=self.device,
                                            channels_last=self.s.channels_last)
        return self._streams[bs]

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Top-1 accuracy (%) and mean cross-entropy on the test set (and the validation split if any)."""
        was_training = model.training
        model.eval()
        out = {}
        for split, stream in (("val", self.val_stream), ("test", self.test_stream)):
            if stream is None:
                continue
            correct, loss, n = 0, 0.0, 0
            for images, labels in stream:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.s.amp):
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
        stream = self.test_stream if split == "test" else self.val_stream
        was_training = objective.training
        objective.eval()
        sums: dict[str, float] = {}
        n = 0
        for images, labels in stream or []:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.s.amp):
                out = objective(images, labels)
            for k, v in out.losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) * labels.numel()
            n += labels.numel()
        objective.train(was_training)
        return {f"{split}_{k}": v / max(1, n) for k, v in sums.items()}

    # ---- training stages ---------------------------------------------------------------------------------

    def stage_config(self, stage: str, config: dict, recipe: Recipe, arch: str | None = None) -> dict:
        ds = self.dataset
        return {
            "stage": stage, "config": config, "arch": arch or self.s.arch, "seed": self.seed,
            "dataset": {"name": ds.name, "fingerprint": ds.fingerprint, **ds.notes},
            "recipe": recipe.as_dict(), "select": self.s.select,
            "engine": {"version": ENGINE_VERSION, "device": self.device.type, "amp": self.s.amp,
                       "channels_last": self.s.channels_last},
        }

    def train(
        self,
        stage: str,
        objective: "Objective",
        *,
        config: dict,
        recipe: Recipe | None = None,
        arch: str | None = None,
        evaluate: Callable[[], dict[str, float]] | None = None,
        params: list | None = None,
        select_metric: str | None = None,
        stream: TrainStream | None = None,
    ) -> TrainedStage:
        """Train ``objective`` (or load it, when this exact stage was trained before) and return the stage.

        ``config`` identifies what is trained (the method and its options); the harness adds the arch,
        dataset, recipe, seed and engine settings to form the artifact key. ``stream`` replaces the run's
        training batches (same seeded plan; e.g. input/target pairs stacked channel-wise so that both get
        the same crop and flip); ``config`` must then identify its content. ``evaluate`` defaults to the
        classification accuracy of ``objective.model``; ``select_metric`` to ``val_acc``/``test_acc`` as
        ``--select`` says (``None`` with ``--select last``).
        """
        recipe = recipe or self.recipe
        full = self.stage_config(stage, config, recipe, arch)
        key = config_key(full)
        label = f"{self.method_name}/{stage}" if stage != "baseline" else f"baseline[{arch or self.s.arch}]"
        payload = None if self.s.retrain else self.s.store.load(stage, key)
        if payload is not None:
            objective.load_state_dict(payload["objective"])
            self.note(f"{label}: reusing trained artifact {key}")
            result = TrainedStage(stage, key, payload["history"], payload["seconds"], True, info=payload.get("info", {}),
                                  digest=state_digest(payload["objective"]))
        else:
            evaluate = evaluate or (lambda: self.evaluate(objective.model))
            if select_metric is None and self.s.select != "last":
                select_metric = f"{self.s.select}_acc"
                if self.s.select == "val" and self.val_stream is None:
                    raise UsageError("--select val needs a validation split: add --val-split FRACTION")
            fitted = fit(
                objective, stream or self.train_stream(recipe.batch_size), recipe, evaluate=evaluate, label=label,
                reporter=self.s.reporter, device=self.device, params=params,
                checkpoint=self.s.store.checkpoint_path(stage, key), resume=self.s.resume, amp=self.s.amp,
                select=(lambda row: row[select_metric]) if select_metric else None,
                state_to_keep=objective.state_dict,
            )
            info = {"selected": "last", "resumed_from_epoch": fitted.resumed_from_epoch}
            if fitted.best_state is not None:
                objective.load_state_dict(fitted.best_state)
                best = max(fitted.history, key=lambda row: row[select_metric])
                info.update(selected=select_metric, selected_epoch=best["epoch"])
            finished_elsewhere = None if self.s.retrain else self.s.store.load(stage, key)
            if finished_elsewhere is not None:
                # another process completed this very stage meanwhile: use its weights, so that every
                # consumer of the artifact sees the same ones (first complete artifact wins)
                objective.load_state_dict(finished_elsewhere["objective"])
                self.note(f"{label}: another run finished this stage first; using its artifact {key}")
                result = TrainedStage(stage, key, finished_elsewhere["history"], finished_elsewhere["seconds"], True,
                                      info=finished_elsewhere.get("info", {}),
                                      digest=state_digest(finished_elsewhere["objective"]))
            else:
                state = objective.state_dict()
                result = TrainedStage(stage, key, fitted.history, fitted.seconds, False, info=info,
                                      digest=state_digest(state))
                self.s.store.save(stage, key, {"objective": state, "history": fitted.history,
                                               "seconds": fitted.seconds, "info": info}, full)
        self.stage_log[label.split("/")[-1]] = {
            "seconds": result.seconds, "reused": result.reused, "artifact": key, "digest": result.digest,
            "epochs": len(result.history),
            "resumed_from_epoch": result.info.get("resumed_from_epoch", 0),
        }
        return result

    def baseline(self, arch: str | None = None) -> TrainedStage:
        """The plain cross-entropy model of ``arch`` (the run's by default), trained once and shared."""
        from harness.methods.contract import Objective

        model = self.build_arch(arch)
        stage = self.train("baseline", Objective(model), config={"name": "baseline"}, arch=arch)
        stage.model = model.eval()
        return stage

    def teacher(self) -> TrainedStage:
        """The frozen teacher: ``--teacher-checkpoint PATH`` loaded, or the baseline of ``--teacher ARCH``
        (trained once and shared)."""
        if self.teacher_stage is not None:
            return self.teacher_stage
        if self.s.teacher_checkpoint is not None:
            from harness.methods.teachers import load_teacher_checkpoint

            self.teacher_stage = load_teacher_checkpoint(self, self.s.teacher_checkpoint)
            return self.teacher_stage
        if self.s.teacher_arch is None:
            raise UsageError(f"method '{self.method_name}' needs a teacher: pass --teacher ARCH")
        self.teacher_stage = self.baseline(self.s.teacher_arch)
        return self.teacher_stage
