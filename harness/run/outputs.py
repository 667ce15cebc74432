"""A classifier's output, checked before anything trains: one logit per class of the run's dataset.

An architecture factory that ignores ``spec.num_classes`` (ten outputs, whatever the dataset) trains without
an error: cross-entropy accepts any labels below its width, and the accuracy counts the extra logits as
wrong answers, so a 2-class run recorded a plausible top-1 with exit 0. :func:`check_logits` runs one image
of the dataset's shape through a model in eval mode (no gradient, no random draw, no statistics updated) and
refuses anything but ``(1, classes)`` logits, in one line. :func:`check_architectures` does it once per
architecture of a dry resolution (the model of its baseline stage: the factory's own network, before any
method changes it), which is one forward pass for the student and one for the teacher.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from harness.core.errors import UsageError
from harness.train.stage import TrainedStage


def logits_problem(model: nn.Module, shape: tuple[int, int, int], classes: int, device: torch.device) -> str | None:
    """What is wrong with ``model``'s output for one image of ``shape`` (C, H, W), or None."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *shape, device=device))
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        return f"returns a {type(out).__name__}, not a tensor of logits"
    if tuple(out.shape) != (1, classes):
        return (
            f"returns logits of shape {tuple(out.shape)} for one {'x'.join(map(str, shape))} image, not "
            f"(1, {classes}): the dataset has {classes} classes, so its last layer needs spec.num_classes "
            f"outputs"
        )
    return None


def check_logits(model: nn.Module, shape: tuple[int, int, int], classes: int, device: torch.device, what: str) -> None:
    """Raise a UsageError naming ``what`` when ``model``'s logits are not ``(1, classes)`` for one image."""
    problem = logits_problem(model, shape, classes, device)
    if problem:
        raise UsageError(f"{what} {problem}")


def check_architectures(
    nodes: Iterable[TrainedStage],
    shape: tuple[int, int, int],
    classes: int,
    device: torch.device,
    where: str,
    seen: set[str],
) -> None:
    """:func:`check_logits` on the model of every architecture's classifier stage among ``nodes`` (a stage
    with an ``arch``, evaluated by accuracy) whose architecture is not in ``seen`` (then added): a UsageError
    ``"{where}: stage ...: its model ..."``."""
    for node in nodes:
        arch = node.stage.arch
        if arch is None or arch in seen or node.stage.evaluate != "accuracy":
            continue
        seen.add(arch)
        check_logits(node.model, shape, classes, device, f"{where}: stage {node.label}: its model")
