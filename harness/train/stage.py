"""A method's plan as values: the stages it trains (or loads) and what a resolved stage holds.

These are the plugin-facing types of the training layer (exported by :mod:`harness.api`): a method declares
:class:`Stage` values; the executor (:class:`harness.train.executor.StageRunner`) resolves each into a
:class:`TrainedStage`. A stage never computes its own key: the executor does, in
:mod:`harness.core.identity`. :class:`StageContext` is what a stage's factories are handed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from harness.core.errors import UsageError, plugin_code
from harness.core.recipes import Recipe
from harness.data.datasets import ImageDataset
from harness.data.pipeline import Normalizer, TrainStream
from harness.models.whitening import whiten
from harness.train.env import RunEnv
from harness.train.objective import Objective

EVALUATIONS = ("accuracy", "losses", "none")
T = TypeVar("T")


def upstream_first(node: T, upstream: Callable[[T], Iterable[T]]) -> Iterator[T]:
    """``node`` and every node upstream of it in a graph, upstream first, each once."""
    seen: set[int] = set()

    def visit(n: T) -> Iterator[T]:
        if id(n) in seen:
            return
        seen.add(id(n))
        for up in upstream(n):
            yield from visit(up)
        yield n

    return visit(node)


@dataclass(frozen=True)
class TrainData:
    """What a stage trains on when not the run's images: a stream, plus what preparing it found out
    (``info`` goes into records; ``outputs`` are kept with the artifact, e.g. arrays that figures need)."""

    stream: TrainStream
    info: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)


class ArchRewrite(Protocol):
    """What rewrites the run's architecture in a composed method's stages (an architecture-role method:
    :class:`harness.methods.contract.ArchitectureMethod`): its name, its config, and ``rewrite(model)``,
    which changes a freshly built model in place and says what it changed."""

    name: str

    def config(self) -> dict: ...

    def rewrite(self, model: nn.Module) -> dict: ...


@dataclass(frozen=True, eq=False)
class Stage:
    """One trained (or loaded) step of a method's plan.

    ``objective(ctx)`` builds what is trained (untrained; the harness loads or trains its weights);
    ``needs`` maps names to upstream stages, available in the factory as ``ctx.inputs[name]``;
    ``recipe`` defaults to the run's; ``data(ctx)`` replaces the run's training batches; ``params(objective)``
    restricts what the optimiser updates; ``evaluate`` says what is measured after each epoch (``accuracy``
    of ``objective.model``, the objective's ``losses`` on the test set, or ``none``); ``trains=False`` marks
    a stage whose factory produces final weights (a loaded checkpoint). ``arch`` names the architecture of a
    stage shared across methods (``baseline[resnet20]``). ``lr_option`` names what sets the learning rate of
    the stage's ``recipe`` (``--lr``, or the method's option for a stage with a learning rate of its own): the
    error of a diverged stage tells the user to lower it. It is presentation: it never enters the stage key.
    """

    name: str
    objective: Callable[[StageContext], Objective]
    config: Mapping[str, Any] = field(default_factory=dict)
    needs: Mapping[str, "Stage"] = field(default_factory=dict)
    recipe: Recipe | None = None
    arch: str | None = None
    data: Callable[[StageContext], TrainData] | None = None
    params: Callable[[Objective], list[nn.Parameter]] | None = None
    evaluate: str = "accuracy"
    trains: bool = True
    rewrites: tuple[ArchRewrite, ...] = ()
    lr_option: str = "--lr"

    def __post_init__(self) -> None:
        if self.evaluate not in EVALUATIONS:
            raise ValueError(f"stage {self.name}: evaluate must be one of {EVALUATIONS}")

    @property
    def label(self) -> str:
        return f"{self.name}[{self.arch}]" if self.arch else self.name

    def epochs(self, run_recipe: Recipe) -> int:
        return (self.recipe or run_recipe).epochs if self.trains else 0

    def walk(self) -> Iterator["Stage"]:
        """This stage and every stage it needs, upstream first, each once."""
        return upstream_first(self, lambda stage: stage.needs.values())


@dataclass
class TrainedStage:
    """A stage resolved by the executor. ``origin``: ``trained`` (in this process, for this consumer),
    ``cache`` (loaded from the artifact store), ``loaded`` (produced by its factory, e.g. a checkpoint),
    ``shared`` (resolved earlier in this process for another consumer; ``first_origin`` says how) or
    ``planned`` (a dry resolution: nothing trained or loaded; ``cached`` then says whether the store has it)."""

    stage: Stage
    key: str | None
    objective: Objective
    inputs: dict[str, "TrainedStage"]
    origin: str
    digest: str | None = None
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    info: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    cached: bool = False
    first_origin: str | None = None
    plan_key: str | None = None  # ``key``, or in a dry resolution with inputs still to train, a provisional key
    #: The platform that computed it (``harness.results.fingerprint.computing_platform``), kept by every run
    #: that reuses it; None for an artifact saved before stages carried their platform.
    platform: dict | None = None

    @property
    def model(self) -> nn.Module:
        return self.objective.model

    @property
    def label(self) -> str:
        return self.stage.label

    def final(self, metric: str = "test_acc") -> float | None:
        return self.history[-1].get(metric) if self.history else None

    def walk(self) -> Iterator["TrainedStage"]:
        """This stage and everything upstream of it, upstream first, each once."""
        return upstream_first(self, lambda node: node.inputs.values())

    def entry(self) -> dict[str, Any]:
        """What a record says about this stage."""
        return {
            "stage": self.stage.name,
            "arch": self.stage.arch,
            "artifact": self.key,
            "digest": self.digest,
            "origin": self.origin,
            "trained_in_this_process": "trained" in (self.origin, self.first_origin),
            "reused": self.origin != "trained",
            "seconds": self.seconds,
            "epochs": len(self.history),
            "resumed_from_epoch": self.info.get("resumed_from_epoch", 0),
            "needs": {name: up.key for name, up in self.inputs.items()},
            "platform": self.platform,
        }


class StageContext:
    """Handed to a stage's factories (objective, data). Read-only view of the run plus the stage's inputs."""

    def __init__(
        self, env: RunEnv, inputs: dict[str, TrainedStage], stage_name: str, rewrites: tuple[ArchRewrite, ...] = ()
    ) -> None:
        """``inputs``: the trained stages this stage needs, by name; ``rewrites``: the stage's (see
        :class:`Stage`)."""
        self.env = env
        self.inputs = inputs
        self.stage_name = stage_name
        self.rewrites = rewrites
        self.built: list[dict[str, Any]] = []  # every architecture built, for the stage key
        self.rewritten: dict[str, dict[str, Any]] = {}  # what each rewrite changed (the last model built)
        self._factories: list[Callable[..., Any]] = []

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
        with plugin_code(f"architecture '{name}' (its factory)", arch=name):
            model = factory(spec)
        built: dict[str, Any] = {"arch": name, "seed_offset": seed_offset}
        self._factories.append(factory)
        if self.rewrites and name == self.env.arch:
            model = self.env.place(model)
            for rewrite in self.rewrites:
                self.rewritten[rewrite.name] = rewrite.rewrite(model)
                self._factories.append(rewrite.rewrite)
            built["rewrites"] = [rewrite.config() for rewrite in self.rewrites]
        self.built.append(built)
        model = self.env.place(model)
        if self.env.recipe.whiten:
            self._whiten(name, model)
        return model

    def _whiten(self, name: str, model: nn.Module) -> None:
        """The recipe's ``whiten``: the architecture's whitening layer set from the first ``whiten`` training
        images of the run (normalised), and frozen. What it is computed from is in the stage key already: the
        run's data fingerprint (the training tensors after subset and split) and the recipe."""
        recipe = self.env.recipe
        path = getattr(model, "whitening_layer", None)
        if path is None:
            raise UsageError(
                f"recipe '{recipe.name}' whitens the first layer (whiten={recipe.whiten}), but "
                f"architecture '{name}' declares no whitening layer; use an architecture that does "
                f"(airbench94, airbench:...) or a recipe without it"
            )
        layer = model.get_submodule(path)
        if not isinstance(layer, nn.Conv2d):
            raise UsageError(
                f"recipe '{recipe.name}' whitens the first layer of '{name}', which a method's rewrite "
                f"replaced ({type(layer).__name__} at {path}); use --whiten 0 with this method"
            )
        images = self.dataset.train_images[: recipe.whiten]
        whiten(layer, self.normalizer(images.to(self.device)))

    def rewrite_info(self) -> dict[str, Any]:
        """What the stage's rewrites changed, for its objective's ``info`` (empty without rewrites)."""
        return {"rewrites": dict(self.rewritten)} if self.rewritten else {}

    def place(self, module: nn.Module) -> nn.Module:
        return self.env.place(module)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return self.env.evaluate(model)

    def evaluate_objective(self, objective: "Objective", split: str = "test") -> dict[str, float]:
        return self.env.evaluate_objective(objective, split)

    def train_stream(self, batch_size: int | None = None) -> TrainStream:
        return self.env.train_stream(batch_size or self.recipe.batch_size, self.recipe)

    def stream_of(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        normalizer: Normalizer,
        augment: bool = True,
    ) -> TrainStream:
        """A training stream over other tensors with the run's seeded batch plan (e.g. input/target pairs
        stacked channel-wise so that both get the same crop and flip). ``augment``: translated and flipped as
        the run's recipe augments its own batches (``translate``, ``pad_mode``, ``flip``: a 4-pixel crop with
        zero padding and a random flip unless a recipe such as ``fast`` says otherwise), else neither."""
        r = self.recipe
        return TrainStream(
            images,
            labels,
            batch_size=batch_size,
            seed=self.seed,
            normalizer=normalizer,
            device=self.device,
            pad=r.translate if augment else 0,
            flip=r.flip if augment else "none",
            pad_mode=r.pad_mode if augment else "zeros",
            channels_last=self.channels_last,
        )

    def factories(self) -> list[Callable[..., Any]]:
        return list(self._factories)
