"""Stages as values, and the one executor that trains or reuses them.

A method declares what it trains as :class:`Stage` values: a name, an objective factory, its own config,
the stages it needs (by name), its recipe. Baselines, teachers, loaded checkpoints, paraphrasers, hint
stages, autoencoders and heads are all stages. The harness alone computes a stage's key
(:meth:`StageRunner.identity`, hashed by :func:`~harness.core.identity.config_key`): the run's identity (data content and normalisation, subset, split, seed,
selection, engine settings and engine code), the stage's config and recipe, the architectures its factory
built, the code identity of everything it runs (:func:`harness.core.identity.code_identity`), and the
weight digests of the stages it needs. A stage whose key is in the artifact store is loaded, otherwise
trained and stored, under the stage's lock so that processes sharing a store train it once; a record's
identity is the key of its deployed stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from filelock import Timeout
from torch import nn

from harness.core.identity import code_identity, config_key, weights_digest
from harness.core.recipes import Recipe
from harness.data.pipeline import TrainStream
from harness.train.artifacts import ArtifactStore
from harness.train.context import RunEnv, StageContext, require_selection
from harness.train.engine import fit
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


@dataclass(frozen=True, eq=False)
class Stage:
    """One trained (or loaded) step of a method's plan.

    ``objective(ctx)`` builds what is trained (untrained; the harness loads or trains its weights);
    ``needs`` maps names to upstream stages, available in the factory as ``ctx.inputs[name]``;
    ``recipe`` defaults to the run's; ``data(ctx)`` replaces the run's training batches; ``params(objective)``
    restricts what the optimiser updates; ``evaluate`` says what is measured after each epoch (``accuracy``
    of ``objective.model``, the objective's ``losses`` on the test set, or ``none``); ``trains=False`` marks
    a stage whose factory produces final weights (a loaded checkpoint). ``arch`` names the architecture of a
    stage shared across methods (``baseline[resnet20]``).
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
            "stage": self.stage.name, "arch": self.stage.arch, "artifact": self.key, "digest": self.digest,
            "origin": self.origin, "trained_in_this_process": "trained" in (self.origin, self.first_origin),
            "reused": self.origin != "trained", "seconds": self.seconds, "epochs": len(self.history),
            "resumed_from_epoch": self.info.get("resumed_from_epoch", 0),
            "needs": {name: up.key for name, up in self.inputs.items()},
        }


class StageRunner:
    """Resolves stages for one run environment: loads them from the store or trains them, once per process.

    ``dry=True`` trains and loads nothing: it computes keys (where the inputs' digests are known from the
    store) and reports whether each stage is cached.
    """

    def __init__(self, env: RunEnv, store: ArtifactStore, *, resume: bool = False, retrain: bool = False,
                 dry: bool = False) -> None:
        self.env = env
        self.store = store
        self.resume = resume
        self.retrain = retrain
        self.dry = dry
        self._done: dict[str, TrainedStage] = {}
        self.resolved: list[TrainedStage] = []  # every stage resolved, in order (a failed method's record lists them)

    def identity(self, stage: Stage, ctx: StageContext, objective: Objective,
                 inputs: Mapping[str, TrainedStage], *, pending: bool = False) -> dict[str, Any] | None:
        """Everything the stage's key is the hash of, or None when an input's weights are not known (dry
        resolution). ``pending=True``: an input whose weights are not known stands in by its own plan key
        (a provisional identity, which names the stage in a graph of stages still to train)."""
        if any(up.digest is None for up in inputs.values()) and not pending:
            return None
        recipe = stage.recipe or self.env.recipe
        return {
            "stage": stage.name, "config": dict(stage.config), "trains": stage.trains,
            "recipe": recipe.as_dict() if stage.trains else None, "evaluate": stage.evaluate,
            "run": self.env.identity(), "archs": ctx.built,
            "code": code_identity(stage.objective, stage.data, stage.params, objective, *ctx.factories()),
            "needs": {name: up.digest or f"pending:{up.plan_key}" for name, up in sorted(inputs.items())},
        }

    def resolve(self, stage: Stage, owner: str = "") -> TrainedStage:
        """The trained (or loaded) stage; its inputs first."""
        inputs = {name: self.resolve(up, owner) for name, up in stage.needs.items()}
        ctx = StageContext(self.env, inputs, stage.name)
        objective = self.env.place(stage.objective(ctx))
        identity = self.identity(stage, ctx, objective, inputs)
        key = config_key(identity) if identity is not None else None
        plan_key = key
        if key is None and self.dry:
            plan_key = config_key(self.identity(stage, ctx, objective, inputs, pending=True))
        if plan_key is not None and plan_key in self._done:
            first = self._done[plan_key]
            shared = first if self.dry else replace(first, origin="shared", first_origin=first.origin)
            self.resolved.append(shared)
            return shared
        label = stage.label if stage.arch or not owner else f"{owner}/{stage.name}"
        if not stage.trains:
            node = TrainedStage(stage, key, objective.eval(), inputs, "loaded",
                                digest=weights_digest(objective.state_dict()))
            if stage.evaluate == "accuracy" and not self.dry:
                node.history = [self.env.evaluate(objective.model)]
        elif self.dry:
            meta = self.store.meta(stage.name, key) if key else None
            node = TrainedStage(stage, key, objective, inputs, "planned", digest=(meta or {}).get("digest"),
                                cached=meta is not None)
        else:
            node = self._load_or_train(stage, ctx, objective, inputs, key, label, identity)
        node.plan_key = plan_key
        if plan_key is not None:
            self._done[plan_key] = node
        self.resolved.append(node)
        return node

    def _load_or_train(self, stage: Stage, ctx: StageContext, objective: Objective, inputs: dict[str, TrainedStage],
                       key: str, label: str, identity: dict[str, Any]) -> TrainedStage:
        """Load the stage from the store, or train it under its lock.

        The lock is held from "not in the store" through training and saving: a second process that wants the
        same stage waits, then finds the artifact and loads it (origin ``cache``), so that the stage is trained
        once however many processes share the store. A checkpoint beside a finished artifact (left by a run that
        was killed while another one finished the stage) is removed under the lock."""
        if self.env.world is not None:
            return self._load_or_train_together(stage, ctx, objective, inputs, key, label, identity)
        checkpoint = self.store.checkpoint_path(stage.name, key)
        if not self.retrain and not checkpoint.exists():
            payload = self.store.load(stage.name, key)
            if payload is not None:
                self.env.reporter.note(f"{label}: reusing trained artifact {key}")
                return self._from_payload(stage, key, objective, inputs, payload, "cache")
        lock = self.store.lock(stage.name, key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.env.reporter.note(f"{label}: another run is training this stage; waiting for it ({lock.lock_file})")
            lock.acquire()
        try:
            payload = None if self.retrain else self.store.load(stage.name, key)
            if payload is not None:
                checkpoint.unlink(missing_ok=True)
                self.env.reporter.note(f"{label}: reusing trained artifact {key}")
                return self._from_payload(stage, key, objective, inputs, payload, "cache")
            return self._train(stage, ctx, objective, inputs, key, label, identity)
        finally:
            lock.release()

    def _load_or_train_together(self, stage: Stage, ctx: StageContext, objective: Objective,
                                inputs: dict[str, TrainedStage], key: str, label: str,
                                identity: dict[str, Any]) -> TrainedStage:
        """Several ranks (torchrun): rank 0 takes the stage's lock and decides to load or to train; every rank
        loads the artifact (a shared filesystem) or trains with the others."""
        world = self.env.world
        assert world is not None
        lock = self.store.lock(stage.name, key) if world.is_main else None
        if lock is not None:
            lock.acquire()
        try:
            cached = world.from_main(lambda: not self.retrain and self.store.meta(stage.name, key) is not None)
            payload = self.store.load(stage.name, key) if cached else None
            if payload is not None:
                if world.is_main:
                    self.store.checkpoint_path(stage.name, key).unlink(missing_ok=True)
                    self.env.reporter.note(f"{label}: reusing trained artifact {key}")
                return self._from_payload(stage, key, objective, inputs, payload, "cache")
            with world.global_batch_norm(objective):
                return self._train(stage, ctx, objective, inputs, key, label, identity)
        finally:
            if lock is not None:
                lock.release()

    def _train(self, stage: Stage, ctx: StageContext, objective: Objective, inputs: dict[str, TrainedStage],
               key: str, label: str, identity: dict[str, Any]) -> TrainedStage:
        """Train the stage and save its artifact (the caller holds the stage's lock)."""
        recipe = stage.recipe or self.env.recipe
        world = self.env.world
        select_metric = require_selection(self.env) if stage.evaluate == "accuracy" else None
        evaluate: Callable[[], dict[str, float]] = {
            "accuracy": lambda: self.env.evaluate(objective.model),
            "losses": lambda: self.env.evaluate_objective(objective),
            "none": dict,
        }[stage.evaluate]
        if world is not None:  # rank 0 evaluates, every rank gets its numbers
            evaluate = partial(world.from_main, evaluate)
        data = stage.data(ctx) if stage.data is not None else TrainData(self.env.train_stream(recipe.batch_size))
        fitted = fit(
            objective, data.stream, recipe, evaluate=evaluate, label=label, reporter=self.env.reporter,
            device=self.env.device, params=stage.params(objective) if stage.params else None,
            checkpoint=self.store.checkpoint_path(stage.name, key), resume=self.resume, amp=self.env.amp,
            select=(lambda row: row[select_metric]) if select_metric else None, state_to_keep=objective.state_dict,
            world=world,
        )
        info: dict[str, Any] = {**data.info, "selected": "last", "resumed_from_epoch": fitted.resumed_from_epoch}
        if fitted.best_state is not None:
            objective.load_state_dict(fitted.best_state)
            best = max(fitted.history, key=lambda row: row[select_metric])
            info.update(selected=select_metric, selected_epoch=best["epoch"])
        state = objective.state_dict()
        digest = weights_digest(state)
        if world is None or world.is_main:
            self.store.save(stage.name, key, {"objective": state, "history": fitted.history, "seconds": fitted.seconds,
                                              "info": info, "outputs": data.outputs},
                            {"label": stage.label, "arch": stage.arch, "digest": digest, "identity": identity})
        return TrainedStage(stage, key, objective, inputs, "trained", digest=digest, history=fitted.history,
                            seconds=fitted.seconds, info=info, outputs=data.outputs)

    @staticmethod
    def _from_payload(stage: Stage, key: str, objective: Objective, inputs: dict[str, TrainedStage],
                      payload: dict, origin: str) -> TrainedStage:
        objective.load_state_dict(payload["objective"])
        return TrainedStage(stage, key, objective, inputs, origin, digest=weights_digest(payload["objective"]),
                            history=payload["history"], seconds=payload["seconds"], info=payload.get("info", {}),
                            outputs=payload.get("outputs", {}))
