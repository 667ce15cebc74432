"""A classifier's output, checked before anything trains: one logit per class of the run's dataset.

An architecture factory that ignores ``spec.num_classes`` (ten outputs, whatever the dataset) trains without
an error: cross-entropy accepts any labels below its width, and the accuracy counts the extra logits as
wrong answers, so a 2-class run recorded a plausible top-1 with exit 0. :func:`check_logits` runs one image
of the dataset's shape through a model in eval mode (no gradient, no random draw, no statistics updated) and
refuses anything but ``(1, classes)`` logits, in one line. :func:`check_architectures` does it once per
architecture of a dry resolution (the model of its baseline stage: the factory's own network, before any
method changes it).

The pass runs on a meta-device copy of the model (:func:`harness.models.cost.shape_pass`: shapes without
arithmetic, the pass that counts the model's FLOPs, so a dry run that also costs the model makes it once), and
on the model itself, on the run's device, when the meta pass fails (a forward that needs values), so that
every error a real pass raises is raised. Deviation from a real pass: a forward that would fail only on the
values (an out-of-range index into a table) is not caught here, but when it first runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from harness.core.errors import UsageError
from harness.models.cost import Output, ShapePass, shape_pass
from harness.train.stage import TrainedStage

#: A meta pass of a model on one image of a shape (:func:`harness.models.cost.shape_pass`, or a cache of it)
MetaPass = Callable[[nn.Module, tuple[int, int, int]], ShapePass | None]


def made(done: ShapePass | None) -> MetaPass:
    """A :data:`MetaPass` that answers with a pass already made (``done``; None: a real pass is made)."""
    return lambda _model, _shape: done


def output_problem(output: Output, shape: tuple[int, int, int], classes: int) -> str | None:
    """What is wrong with a model's ``output`` for one image of ``shape`` (C, H, W), or None."""
    if output.shape is None:
        return f"returns a {output.kind}, not a tensor of logits"
    if output.shape != (1, classes):
        return (
            f"returns logits of shape {output.shape} for one {'x'.join(map(str, shape))} image, not "
            f"(1, {classes}): the dataset has {classes} classes, so its last layer needs spec.num_classes "
            f"outputs"
        )
    return None


def logits_problem(
    model: nn.Module,
    shape: tuple[int, int, int],
    classes: int,
    device: torch.device,
    meta: MetaPass = shape_pass,
) -> str | None:
    """What is wrong with ``model``'s output for one image of ``shape`` (C, H, W), or None: from ``meta``'s pass
    of it, or from one real pass on ``device`` when ``meta`` has none."""
    done = meta(model, shape)
    if done is not None:
        return output_problem(done.output, shape, classes)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *shape, device=device))
    finally:
        model.train(was_training)
    return output_problem(Output.of(out), shape, classes)


def check_logits(
    model: nn.Module,
    shape: tuple[int, int, int],
    classes: int,
    device: torch.device,
    what: str,
    meta: MetaPass = shape_pass,
) -> None:
    """Raise a UsageError naming ``what`` when ``model``'s logits are not ``(1, classes)`` for one image."""
    problem = logits_problem(model, shape, classes, device, meta)
    if problem:
        raise UsageError(f"{what} {problem}")


def check_architectures(
    nodes: Iterable[TrainedStage],
    shape: tuple[int, int, int],
    classes: int,
    device: torch.device,
    where: str,
    seen: set[str],
    meta: MetaPass = shape_pass,
) -> None:
    """:func:`check_logits` on the model of every architecture's classifier stage among ``nodes`` (a stage
    with an ``arch``, evaluated by accuracy) whose architecture is not in ``seen`` (then added): a UsageError
    ``"{where}: stage ...: its model ..."``."""
    for node in nodes:
        arch = node.stage.arch
        if arch is None or arch in seen or node.stage.evaluate != "accuracy":
            continue
        seen.add(arch)
        check_logits(node.model, shape, classes, device, f"{where}: stage {node.label}: its model", meta)
