"""The one executor that trains or reuses stages: :class:`StageRunner`.

A method declares what it trains as :class:`~harness.train.stage.Stage` values. The runner alone computes a
stage's key (:meth:`StageRunner.identity`, hashed by :func:`~harness.core.identity.config_key`): the run's
identity (data content and normalisation, subset, split, seed, selection, engine settings and engine code),
the stage's config and recipe, the architectures its factory built, the code identity of the modules that
compute it (:func:`harness.core.identity.code_identity`), and the weight digests of the stages it needs. A
stage whose key is in the artifact store is loaded, otherwise trained and stored, under the stage's lock so
that processes sharing a store train it once; a record's identity is the key of its deployed stage.

Extension point: :meth:`StageRunner.obtain` gets a stage whose key is known (a :class:`StageWork`) from the
store or by training it. A subclass overrides it to change where stages come from (the sweep's
:class:`~harness.run.sweep.jobs.StoreRunner` loads every stage but the one its job trains), using the public
:meth:`~StageRunner.load_or_train`, :meth:`~StageRunner.train` and :meth:`~StageRunner.restore`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from filelock import Timeout

from harness.core.identity import code_identity, config_key, weights_digest
from harness.core.errors import plugin_code, warn
from harness.train.artifacts import ArtifactStore, DamagedArtifact
from harness.train.engine import compiled, fit
from harness.train.env import RunEnv, require_selection
from harness.train.objective import Objective
from harness.train.stage import Stage, StageContext, TrainData, TrainedStage


@dataclass(frozen=True)
class StageWork:
    """A stage to obtain, with everything known before it is loaded or trained: its built (untrained)
    objective, its resolved inputs, its key and identity, and the label progress lines show."""

    stage: Stage
    ctx: StageContext
    objective: Objective
    inputs: dict[str, TrainedStage]
    key: str
    label: str
    identity: dict[str, Any]


class StageRunner:
    """Resolves stages for one run environment: loads them from the store or trains them, once per process.

    ``dry=True`` trains and loads nothing: it computes keys (where the inputs' digests are known from the
    store) and reports whether each stage is cached.
    """

    def __init__(
        self, env: RunEnv, store: ArtifactStore, *, resume: bool = False, retrain: bool = False, dry: bool = False
    ) -> None:
        self.env = env
        self.store = store
        self.resume = resume
        self.retrain = retrain
        self.dry = dry
        self._done: dict[str, TrainedStage] = {}
        self.resolved: list[TrainedStage] = []  # every stage resolved, in order (a failed method's record lists them)

    def identity(
        self,
        stage: Stage,
        ctx: StageContext,
        objective: Objective,
        inputs: Mapping[str, TrainedStage],
        *,
        pending: bool = False,
    ) -> dict[str, Any] | None:
        """Everything the stage's key is the hash of, or None when an input's weights are not known (dry
        resolution). ``pending=True``: an input whose weights are not known stands in by its own plan key
        (a provisional identity, which names the stage in a graph of stages still to train)."""
        if any(up.digest is None for up in inputs.values()) and not pending:
            return None
        recipe = stage.recipe or self.env.recipe
        return {
            "stage": stage.name,
            "config": dict(stage.config),
            "trains": stage.trains,
            "recipe": recipe.as_dict() if stage.trains else None,
            "evaluate": stage.evaluate,
            "run": self.env.identity(),
            "archs": ctx.built,
            "code": code_identity(stage.objective, stage.data, stage.params, objective, *ctx.factories(), StageRunner),
            "needs": {name: up.digest or f"pending:{up.plan_key}" for name, up in sorted(inputs.items())},
        }

    def resolve(self, stage: Stage, owner: str = "") -> TrainedStage:
        """The trained (or loaded) stage; its inputs first."""
        inputs = {name: self.resolve(up, owner) for name, up in stage.needs.items()}
        ctx = StageContext(self.env, inputs, stage.name, stage.rewrites)
        label = stage.label if stage.arch or not owner else f"{owner}/{stage.name}"
        with plugin_code(f"stage {label}: objective()"):  # the plugin is named by the caller (it knows the method)
            objective = self.env.place(stage.objective(ctx))
        objective.info.update(ctx.rewrite_info())
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
        if not stage.trains:
            node = TrainedStage(
                stage,
                key,
                objective.eval(),
                inputs,
                "loaded",
                digest=weights_digest(objective.state_dict()),
                info=dict(objective.info),
                platform=self.env.platform or None,
            )
            if stage.evaluate == "accuracy" and not self.dry:
                node.history = [self.env.evaluate(objective.model)]
        elif self.dry:
            meta = self.store.meta(stage.name, key) if key else None
            node = TrainedStage(
                stage,
                key,
                objective,
                inputs,
                "planned",
                digest=(meta or {}).get("digest"),
                cached=meta is not None,
                info=dict(objective.info),
            )
        else:
            assert key is not None and identity is not None
            node = self.obtain(StageWork(stage, ctx, objective, inputs, key, label, identity))
        node.plan_key = plan_key
        if plan_key is not None:
            self._done[plan_key] = node
        self.resolved.append(node)
        return node

    # ---- where a stage comes from (the extension point) ----------------------------------------------

    def obtain(self, work: StageWork) -> TrainedStage:
        """A stage whose key is known: loaded from the store, or trained under its lock. Override to get
        stages from elsewhere; the default is :meth:`load_or_train`."""
        return self.load_or_train(work)

    def load(self, work: StageWork, origin: str = "cache", *, set_aside: bool = True) -> TrainedStage | None:
        """The stage from the artifact store, verified (None when the store does not hold a sound one). A
        damaged artifact (see :meth:`ArtifactStore.load`) is one ``bench: warning:`` line naming the file,
        which is moved aside so that it is never tried again (``set_aside=False``: left for the caller that
        holds the stage's lock, and no line), and the stage is trained again: never served."""
        try:
            payload = self.store.load(work.stage.name, work.key, expect=work.objective.state_dict())
        except DamagedArtifact as damaged:
            if set_aside:
                moved = self.store.set_aside(work.stage.name, work.key)
                where = f"moved aside to {moved.name}" if moved else "removed"
                warn(
                    f"artifact {damaged.path} of {work.label} cannot be trusted: {damaged.reason}; {where}, "
                    f"the stage is trained again"
                )
            return None
        return None if payload is None else self.restore(work, payload, origin)

    def load_or_train(self, work: StageWork) -> TrainedStage:
        """Load the stage from the store, or train it under its lock.

        The lock is held from "not in the store" through training and saving: a second process that wants the
        same stage waits, then finds the artifact and loads it (origin ``cache``), so that the stage is trained
        once however many processes share the store. A checkpoint beside a finished artifact (left by a run that
        was killed while another one finished the stage) is removed under the lock."""
        if self.env.world is not None:
            return self._load_or_train_together(work)
        stage, key, label = work.stage, work.key, work.label
        checkpoint = self.store.checkpoint_path(stage.name, key)
        if not self.retrain and not checkpoint.exists():
            node = self.load(work, set_aside=False)  # a damaged one is set aside under the lock, below
            if node is not None:
                self.env.reporter.note(f"{label}: reusing trained artifact {key}")
                return node
        lock = self.store.lock(stage.name, key)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.env.reporter.note(f"{label}: another run is training this stage; waiting for it ({lock.lock_file})")
            lock.acquire()
        try:
            node = None if self.retrain else self.load(work)
            if node is not None:
                checkpoint.unlink(missing_ok=True)
                self.env.reporter.note(f"{label}: reusing trained artifact {key}")
                return node
            return self.train(work)
        finally:
            lock.release()

    def _load_or_train_together(self, work: StageWork) -> TrainedStage:
        """Several ranks (torchrun): rank 0 takes the stage's lock and decides to load or to train; every rank
        loads the artifact (a shared filesystem) or trains with the others."""
        world = self.env.world
        assert world is not None
        stage, key = work.stage, work.key
        lock = self.store.lock(stage.name, key) if world.is_main else None
        if lock is not None:
            lock.acquire()
        try:
            node = self.load(work) if world.is_main and not self.retrain else None  # rank 0 verifies it
            cached = world.from_main(lambda: node is not None)
            if cached and not world.is_main:
                node = self.load(work, set_aside=False)
            if node is not None:
                if world.is_main:
                    self.store.checkpoint_path(stage.name, key).unlink(missing_ok=True)
                    self.env.reporter.note(f"{work.label}: reusing trained artifact {key}")
                return node
            with world.global_batch_norm(work.objective):
                return self.train(work)
        finally:
            if lock is not None:
                lock.release()

    def train(self, work: StageWork) -> TrainedStage:
        """Train the stage and save its artifact (the caller holds the stage's lock)."""
        stage, objective, key = work.stage, work.objective, work.key
        recipe = stage.recipe or self.env.recipe
        world = self.env.world
        select_metric = require_selection(self.env) if stage.evaluate == "accuracy" else None
        mode = self.env.compile  # --compile: the step and the evaluation run compiled wrappers of the objective
        step, model = compiled(objective, mode), compiled(objective.model, mode)
        evaluate: Callable[[], dict[str, float]] = {
            "accuracy": lambda: self.env.evaluate(model),
            "losses": lambda: self.env.evaluate_objective(objective),
            "none": dict,
        }[stage.evaluate]
        if world is not None:  # rank 0 evaluates, every rank gets its numbers
            evaluate = partial(world.from_main, evaluate)
        evaluate_last = (lambda: self.env.evaluate(model, final=True)) if stage.evaluate == "accuracy" else None
        if world is not None and evaluate_last is not None:
            evaluate_last = partial(world.from_main, evaluate_last)
        objective.label_smoothing = recipe.label_smoothing  # of the objective's cross-entropy on labels
        with plugin_code(f"stage {work.label}: data()"):
            data = (
                stage.data(work.ctx)
                if stage.data is not None
                else TrainData(self.env.train_stream(recipe.batch_size, recipe))
            )
        with plugin_code(f"stage {work.label}: params()"):
            params = stage.params(objective) if stage.params else None
        with plugin_code(f"stage {work.label}: training (the objective's forward or its losses)"):
            fitted = fit(
                objective,
                data.stream,
                recipe,
                evaluate=evaluate,
                label=work.label,
                reporter=self.env.reporter,
                device=self.env.device,
                params=params,
                checkpoint=self.store.checkpoint_path(stage.name, key),
                resume=self.resume,
                amp=self.env.amp,
                select=(lambda row: row[select_metric]) if select_metric else None,
                state_to_keep=objective.state_dict,
                world=world,
                forward=step,
                warmup_batches=1 if mode else 0,
                evaluate_last=evaluate_last if self.env.tta != "none" else None,
                lr_option=stage.lr_option,
            )
        info: dict[str, Any] = {
            **objective.info,
            **data.info,
            "selected": "last",
            "resumed_from_epoch": fitted.resumed_from_epoch,
        }
        if fitted.best_state is not None:
            objective.load_state_dict(fitted.best_state)
            best = max(fitted.history, key=lambda row: row[select_metric])
            info.update(selected=select_metric, selected_epoch=best["epoch"])
        state = objective.state_dict()
        digest = weights_digest(state)
        platform = self.env.platform or None  # the platform that computed it travels with the artifact
        if world is None or world.is_main:
            self.store.save(
                stage.name,
                key,
                {
                    "objective": state,
                    "history": fitted.history,
                    "seconds": fitted.seconds,
                    "info": info,
                    "outputs": data.outputs,
                    "platform": platform,
                },
                {
                    "label": stage.label,
                    "arch": stage.arch,
                    "digest": digest,
                    "identity": work.identity,
                    "platform": platform,
                },
            )
        return TrainedStage(
            stage,
            key,
            objective,
            work.inputs,
            "trained",
            digest=digest,
            history=fitted.history,
            seconds=fitted.seconds,
            info=info,
            outputs=data.outputs,
            platform=platform,
        )

    @staticmethod
    def restore(work: StageWork, payload: dict, origin: str) -> TrainedStage:
        """The stage from a stored payload (weights, history, info, outputs), with ``origin``."""
        work.objective.load_state_dict(payload["objective"])
        info = {**payload.get("info", {}), **work.objective.info}  # what building it says now is never stale
        digest = payload.get("digest") or weights_digest(payload["objective"])  # verified by the store's load
        return TrainedStage(
            work.stage,
            work.key,
            work.objective,
            work.inputs,
            origin,
            digest=digest,
            history=payload["history"],
            seconds=payload["seconds"],
            info=info,
            outputs=payload.get("outputs", {}),
            platform=payload.get("platform"),
        )
