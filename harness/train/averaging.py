"""Weight averaging of a recipe: Lookahead (Zhang et al., NeurIPS 2019) as airbench94 schedules it.

Every ``every`` steps the slow weights move towards the fast ones, ``slow <- slow + (1 - decay) (fast - slow)``,
and the fast weights are reset to the slow ones; ``decay = 0.95 ** 5 * (step / total) ** 3`` grows from 0 to
0.77 over training (airbench94's ``alpha_schedule``), and after the last step the network takes the slow
weights. Every floating-point entry of the state dict is averaged, BatchNorm running statistics included, as
airbench does.

Deviation from airbench: the slow and fast weights are also synchronised at the end of every epoch (one
update more wherever an epoch's step count is not a multiple of ``every``), so that the weights a checkpoint
saves are the whole state and a resumed stage continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import torch
from torch import nn

#: airbench94: a Lookahead update every 5 steps, decay 0.95 ** 5 * (step / total) ** 3
EVERY = 5
DECAY_BASE = 0.95**5


class Lookahead:
    """The slow weights of ``module`` (a copy of its floating-point state, taken now)."""

    def __init__(self, module: nn.Module, total_steps: int, every: int = EVERY) -> None:
        self.module, self.total, self.every = module, max(1, total_steps), every
        self.slow = {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}

    def decay(self, step: int) -> float:
        return DECAY_BASE * (step / self.total) ** 3

    @torch.no_grad()
    def update(self, decay: float) -> None:
        """Slow weights towards the fast ones by ``1 - decay``; then the fast weights are the slow ones."""
        fast = self.module.state_dict()
        for name, slow in self.slow.items():
            slow.lerp_(fast[name], 1 - decay)
            fast[name].copy_(slow)

    def step(self, step: int) -> None:
        """After 1-based training step ``step``: an update every ``every`` steps."""
        if step % self.every == 0:
            self.update(self.decay(step))

    def synchronise(self, step: int, *, last: bool) -> None:
        """At the end of an epoch (after 1-based step ``step``): an update unless :meth:`step` just made one;
        after the last epoch the network takes the slow weights (decay 1), as airbench's last step does."""
        if last:
            self.update(1.0)
        elif step % self.every:
            self.update(self.decay(step))
