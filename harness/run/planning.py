"""A run's plans resolved once while it is planned: validation, ``--dry-run``'s table, the workload estimate,
the stage graph and a real run's notes before training walk the same dry resolutions.

A dry resolution (:class:`~harness.train.executor.StageRunner` with ``dry=True``) builds every stage's
objective on untrained networks to compute the stage's key. Each walker used to make its own runner, and a
runner builds a stage's objective even when it has resolved the stage before, so the headline dry run built
ResNet-50/101 24 times, each build with the architecture's test forward passes. Here, per prepared run:

* one dry runner per (seed, dataset) serves every walker, and a stage it resolved is not resolved again
  (:class:`PlanningRunner`);
* an architecture is built once per (architecture, spec, random-number state): a later build of the same
  is a copy of the first, and leaves the random-number state the first build left (:class:`ArchBuilds`),
  so the copy is what building it again gives, weights and later random draws alike; the copies' weights are
  copy-on-write (:func:`lazy_copy`), so a copy costs its modules, not its weights' memory, until written;
* a model's forward pass on the meta device (:func:`harness.models.cost.shape_pass`: its FLOPs for the
  workload estimate, its output for validation's logits check) is made once per structure
  (:func:`structure_key`): the same architecture as a baseline, a student and a teacher is passed once, and
  validation makes no real forward pass of its own (the architectures' factories make theirs, which are
  part of what they build).

Nothing here trains, and no key changes: a cached factory is a :func:`functools.partial` of the
architecture's own factory, which :func:`harness.core.identity.code_identity` follows to the factory's code.
The cache holds models, so it is dropped (:meth:`Planning.release`) before anything trains.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from harness.data.datasets import ImageDataset
from harness.models.cost import ShapePass, counted_pass, shape_pass
from harness.models.levels import ArchSpec
from harness.train.artifacts import ArtifactStore
from harness.train.env import ArchFactory, RunEnv
from harness.train.executor import StageRunner
from harness.train.stage import Stage, TrainedStage


def rng_digest() -> str:
    """A digest of the CPU random-number state (what an architecture's initial weights are drawn from)."""
    return hashlib.blake2b(torch.get_rng_state().numpy().tobytes(), digest_size=16).hexdigest()


def lazy_copy(model: nn.Module) -> nn.Module:
    """``copy.deepcopy(model)`` whose parameters and buffers are copy-on-write clones (``torch._lazy_clone``):
    the same values, dtypes, strides and ``requires_grad``, sharing memory with ``model`` until either side
    writes to a tensor, which then gets its own copy first. A deep copy where that is not the same: no
    ``torch._lazy_clone`` (a private function of torch, present since 2.2), a tensor that is a subclass or
    has a gradient, or two tensors sharing memory (views of one another, which separate clones would part)."""
    lazy = getattr(torch, "_lazy_clone", None)
    tensors = [*model.parameters(), *model.buffers()]
    storages = [t.untyped_storage().data_ptr() for t in tensors if t.untyped_storage().nbytes()]
    if (
        lazy is None
        or len(set(storages)) != len(storages)
        or any(type(t) not in (torch.Tensor, nn.Parameter) or t.grad is not None for t in tensors)
    ):
        return copy.deepcopy(model)
    memo: dict[int, object] = {}
    for param in model.parameters():
        memo[id(param)] = nn.Parameter(lazy(param.detach()), requires_grad=param.requires_grad)
    for buffer in model.buffers():
        memo.setdefault(id(buffer), lazy(buffer))
    return copy.deepcopy(model, memo)


@dataclass
class ArchBuilds:
    """Architecture builds by (name, spec, random-number state at the call): the first build's weights (a
    copy, since a stage's objective may change the model it gets) and the state it left. ``built`` counts
    the factory calls made (the rest were copies)."""

    models: dict[tuple[str, str], tuple[nn.Module, torch.Tensor]] = field(default_factory=dict)
    built: int = 0

    def build(self, factory: ArchFactory, spec: ArchSpec) -> nn.Module:
        key = (repr(spec), rng_digest())
        if key in self.models:
            model, after = self.models[key]
            torch.set_rng_state(after)
            return lazy_copy(model)
        model = factory(spec)
        self.built += 1
        after = torch.get_rng_state()
        try:
            self.models[key] = (lazy_copy(model), after)
        except Exception:  # a model that cannot be copied is built every time, as without the cache
            pass
        return model


class CachedFactory(functools.partial):
    """An architecture's factory whose builds go through :class:`ArchBuilds`. A partial of the factory itself
    (no arguments added; a factory that is a partial is flattened into this one), so that code identity sees
    the factory's own code."""

    builds: ArchBuilds

    def __call__(self, spec: ArchSpec) -> nn.Module:
        return self.builds.build(super().__call__, spec)  # (a partial's own call: its arguments, then spec)


def cached_factory(factory: ArchFactory, builds: ArchBuilds) -> CachedFactory:
    cached = CachedFactory(factory)
    cached.builds = builds
    return cached


def structure_key(module: nn.Module) -> tuple:
    """What a module's forward cost depends on: its classes and settings (its repr), its tensors' names,
    shapes and dtypes, and its hooks (never its weights' values)."""
    tensors = tuple((name, tuple(t.shape), str(t.dtype)) for name, t in module.state_dict().items())
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())
    return f"{type(module).__module__}.{type(module).__qualname__}", repr(module), tensors, hooks


class PlanningRunner(StageRunner):
    """A dry runner that resolves each stage once: a stage object it has resolved gets the same node again
    (what resolving it again would give: the same key, cache state and inputs)."""

    def __init__(self, env: RunEnv, store: ArtifactStore) -> None:
        super().__init__(env, store, dry=True)
        self._nodes: dict[int, tuple[Stage, TrainedStage]] = {}  # id(stage) -> (the stage, kept alive; its node)

    def resolve(self, stage: Stage, owner: str = "") -> TrainedStage:
        known = self._nodes.get(id(stage))
        if known is not None and known[0] is stage:
            self.resolved.append(known[1])
            return known[1]
        node = super().resolve(stage, owner)
        self._nodes[id(stage)] = (stage, node)
        return node


@dataclass
class Planning:
    """The dry runners of one prepared run by (seed, dataset), and its architecture builds."""

    builds: ArchBuilds = field(default_factory=ArchBuilds)
    _runners: dict[tuple[int, int], tuple[ImageDataset, PlanningRunner]] = field(default_factory=dict)
    _factories: dict[str, CachedFactory] = field(default_factory=dict)
    _stand_in: list[ImageDataset | None] = field(default_factory=list)  # [] until made: [the stand-in or None]
    _passes: dict[tuple, ShapePass | None] = field(default_factory=dict)  # (structure, input shape) -> meta pass
    _flops: dict[tuple, int] = field(default_factory=dict)  # (structure, input shape, device) -> real count

    def shape_pass(self, module: nn.Module, shape: tuple[int, ...]) -> ShapePass | None:
        """:func:`harness.models.cost.shape_pass` of ``module``, made once per structure and input."""
        key = (structure_key(module), shape)
        if key not in self._passes:
            self._passes[key] = shape_pass(module, shape)
        return self._passes[key]

    def forward_flops(self, module: nn.Module, shape: tuple[int, int, int], device: torch.device) -> int:
        """FLOPs of one forward pass at batch 1 (:func:`harness.models.cost.count_cost`), counted once per
        structure and input: on the meta device (:meth:`shape_pass`), else by a real pass on ``device``."""
        done = self.shape_pass(module, shape)
        if done is not None:
            return done.cost.flops
        key = (structure_key(module), shape, device.type)
        if key not in self._flops:
            self._flops[key] = counted_pass(module, shape, device).cost.flops
        return self._flops[key]

    def stand_in(self, make: Callable[[], ImageDataset | None]) -> ImageDataset | None:
        """The run's shape-only stand-in (``make()`` the first time): one object, so that its runners are shared."""
        if not self._stand_in:
            self._stand_in.append(make())
        return self._stand_in[0]

    def runner(self, seed: int, dataset: ImageDataset, env: Callable[[], RunEnv], store: ArtifactStore) -> StageRunner:
        """The dry runner of ``seed`` on ``dataset`` (``env()`` makes its environment the first time)."""
        key = (seed, id(dataset))
        known = self._runners.get(key)
        if known is None or known[0] is not dataset:
            made = env()
            made = replace(made, resolve_arch=functools.partial(self._resolve_arch, made.resolve_arch))
            known = self._runners[key] = (dataset, PlanningRunner(made, store))
        return known[1]

    def _resolve_arch(
        self, resolve: Callable[[str], tuple[ArchFactory, str | None]], name: str
    ) -> tuple[Any, str | None]:
        factory, arg = resolve(name)
        if name not in self._factories or self._factories[name].func is not factory:
            self._factories[name] = cached_factory(factory, self.builds)
        return self._factories[name], arg

    def release(self) -> None:
        """Drop every runner and build (their models): before a run trains."""
        self._runners.clear()
        self._factories.clear()
        self.builds.models.clear()
