"""Multi-exit classifiers: networks with classifiers at several depths (early exits, anytime prediction).

A multi-exit architecture is an ``nn.Module`` whose ``forward(x)`` returns the logits of its last (deepest)
exit, as any classifier does (so accuracy, cost and latency of the deployed model are those of the full
network), and which also has

* ``num_exits``: how many classifiers it has;
* ``forward_exits(x, upto=None)``: the logits of exits ``1..upto`` (all by default), shallowest first,
  computing each earlier classifier on the way, as anytime and budgeted evaluation do.

Nothing in the harness core trains or evaluates exits: a method does (``plugins/methods/anytime``: the
weighted sum of every exit's cross-entropy, anytime and budgeted-batch evaluation). Other methods train such
a model through ``forward``, i.e. its last exit only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

import torch
from torch import nn

from harness.core.errors import UsageError
from harness.models.cost import ModelCost, count_cost


@runtime_checkable
class MultiExit(Protocol):
    num_exits: int

    def forward_exits(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]: ...


if TYPE_CHECKING:

    class MultiExitModel(nn.Module):
        """A module with :class:`MultiExit`'s members, as type checkers see what :func:`require_multi_exit`
        returns (at run time: any ``nn.Module``)."""

        num_exits: int

        def forward_exits(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]: ...
else:
    MultiExitModel = nn.Module


def require_multi_exit(model: nn.Module, method: str) -> MultiExitModel:
    """``model`` when it has several exits, else a one-line refusal naming the method."""
    if isinstance(model, MultiExit) and model.num_exits >= 1:
        return cast(MultiExitModel, model)
    raise UsageError(
        f"method '{method}' needs a multi-exit architecture (forward_exits, e.g. msdnet); "
        f"'{getattr(model, 'arch_name', type(model).__name__)}' has a single classifier"
    )


class FirstExits(nn.Module):
    """The part of a multi-exit model that produces exit ``upto``: the network up to it and every earlier
    classifier (what a sample that leaves at that exit has cost). Used to count per-exit cost."""

    def __init__(self, model: nn.Module, upto: int) -> None:
        super().__init__()
        self.model = model
        self.upto = upto

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        assert isinstance(model, MultiExit)
        return model.forward_exits(x, upto=self.upto)[-1]


def exit_costs(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> list[ModelCost]:
    """Cumulative MACs and FLOPs of reaching each exit (earlier classifiers included), at batch 1."""
    assert isinstance(model, MultiExit), "a multi-exit model (require_multi_exit)"
    return [count_cost(FirstExits(model, k), input_shape, device) for k in range(1, model.num_exits + 1)]
