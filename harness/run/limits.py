"""The declared limits of a run request's numbers (besides the recipe's, :data:`harness.core.recipes.RECIPE_LIMITS`).

The CLI's argparse types use them (``--val-split``, ``--threads`` ...) and :func:`check_request` checks a
:class:`~harness.run.request.RunRequest` built in code the same way, so a request never reaches torch with
a NaN, a zero or a negative number. Importing this module is cheap (no torch): ``bench --help`` uses it.
"""

from __future__ import annotations

from typing import Any

from harness.core.constraints import COUNT, UNIT_OPEN, Constraint, between

#: a seed: what torch, numpy and Python's random all accept
SEED = between(0, 2**32 - 1, integer=True)

#: request field -> (its command-line flag, the values it takes); None (not given) is always allowed
REQUEST_LIMITS: dict[str, tuple[str, Constraint]] = {
    "val_split": ("--val-split", UNIT_OPEN),  # 0: no validation split
    "train_subset": ("--train-subset", COUNT),
    "test_subset": ("--test-subset", COUNT),
    "threads": ("--threads", COUNT),
    "latency_batch": ("--latency-batch", COUNT),
}


def check_request(request: Any) -> None:
    """A UsageError naming the flag for a number of ``request`` outside its limits (seeds included)."""
    for field, (flag, limit) in REQUEST_LIMITS.items():
        value = getattr(request, field)
        if value is not None:
            limit.check(value, flag)
    for seed in request.seeds:
        SEED.check(seed, "--seeds: each seed")
