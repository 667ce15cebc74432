"""A run request's numbers within their declared limits, and sizes that can train.

The limits are the run specification's (:data:`harness.run.spec.options.OPTIONS`; the recipe's are
:data:`harness.core.recipes.RECIPE_LIMITS`): the CLI's argparse types and study files check them as values
are read, and :func:`check_request` checks a :class:`~harness.run.request.RunRequest` built in code the same
way, so a request never reaches torch with a NaN, a zero or a negative number. :func:`check_sizes` refuses a
training split that cannot train. Importing this module is cheap (no torch).
"""

from __future__ import annotations

from typing import Any

from harness.core.errors import UsageError
from harness.run.spec.kinds import Integer, Number
from harness.run.spec.options import OPTIONS, SEED


def check_request(request: Any) -> None:
    """A UsageError naming the flag for a number of ``request`` outside its limits (seeds included), or for
    a ``--train-subset`` that cannot train (:func:`check_sizes`)."""
    for option in OPTIONS:  # the request's own numbers (recipe overrides: Recipe.with_overrides checks them)
        if option.field == option.name and isinstance(option.kind, (Integer, Number)):
            value = getattr(request, option.name)
            if value is not None:
                option.kind.constraint.check(value, option.flag or option.name)
    for seed in request.seeds:
        SEED.check(seed, "--seeds: each seed")
    if request.train_subset is not None:  # refused without the data too (dry runs): it needs no dataset size
        check_sizes(request, request.train_subset, "")


#: the fewest images a training split needs: one batch that BatchNorm can train on (a trailing batch of one
#: image is dropped, :class:`harness.data.pipeline.TrainStream`, so one image gives no batch at all)
MIN_TRAIN_IMAGES = 2


def split_sizes(images: int, val_split: float) -> tuple[int, int]:
    """(training, validation) images of ``images`` with ``val_split`` held out, rounded as
    :func:`harness.data.datasets.prepare` rounds them."""
    held = int(round(images * val_split)) if val_split else 0
    return images - held, held


def trains(images: int, val_split: float) -> bool:
    """Whether ``images`` training images leave a training split of one batch and, with ``val_split``, a
    validation split of at least one image."""
    train, held = split_sizes(images, val_split)
    return train >= MIN_TRAIN_IMAGES and (held > 0 or not val_split)


def smallest_training_set(val_split: float) -> int:
    """The fewest training images :func:`trains` accepts under ``val_split`` (searched from a lower bound:
    ``n (1 - v) + 1/2 >= 2`` and ``n v >= 1/2`` hold for every accepted ``n``)."""
    start = MIN_TRAIN_IMAGES
    if val_split:
        start = max(start, int(max(1.5 / (1 - val_split), 0.5 / val_split)) - 1)
    n = start
    while not trains(n, val_split):
        n += 1
    return n


def check_sizes(request: Any, train_images: int, dataset: str) -> None:
    """A UsageError, before anything trains, when the training images of ``request`` (``--train-subset``,
    else the ``train_images`` of ``dataset``) leave a training split without one batch, or a ``--val-split``
    that holds out no image; it names the smallest ``--train-subset`` (or ``--val-split``) that works.

    Deviation: a training split smaller than the recipe's batch size is not refused: it trains on one
    smaller batch per epoch, as the last batch of any epoch does."""
    n = request.train_subset or train_images
    val_split = request.val_split or 0.0
    if trains(n, val_split):
        return
    train, held = split_sizes(n, val_split)
    if train < MIN_TRAIN_IMAGES:
        split = f" (--val-split {val_split:g} holds out {held})" if val_split else ""
        what = f"{train} training image(s){split} cannot train: a batch needs at least {MIN_TRAIN_IMAGES}"
    else:
        what = f"--val-split {val_split:g} of {n} training images holds out none"
    smallest = smallest_training_set(val_split)
    if request.train_subset:
        raise UsageError(f"--train-subset {n}: {what}; the smallest --train-subset that works is {smallest}")
    if train >= MIN_TRAIN_IMAGES and trains(n, 1 / n):
        raise UsageError(f"dataset {dataset}: {what}; use --val-split {1 / n:.3g} (one image) or more")
    raise UsageError(f"dataset {dataset}: {what}; it needs at least {smallest} training images")
