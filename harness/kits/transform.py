"""Kit for methods that rewrite the architecture (wavelet downsampling, low-rank filters, ...).

Like an attention method, such a method builds the run's architecture, changes it, and trains the result
with plain cross-entropy under the run's recipe; the harness then measures the deployed (rewritten) model,
so its parameters and MACs in the record are those of the new architecture. A method gives
``transform(model) -> dict``: change the freshly built model in place and say what was changed (it goes
into the record's ``info.transform``). Where to change is the architecture's business where it matters
(declared sites of :class:`~harness.models.levels.LevelClassifier`), never a guess from class names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import nn

from harness.methods.contract import ArchitectureMethod
from harness.models.levels import count_params


class ArchTransformMethod(ArchitectureMethod, ABC):
    """An architecture-rewriting method: ``transform`` a fresh model, then cross-entropy training. ``sites``
    names what it rewrites (e.g. ``("downsampling layers",)``), so that it composes with other rewrites; left
    at its default it composes with an objective only."""

    @abstractmethod
    def transform(self, model: nn.Module) -> dict:
        """Rewrite ``model`` in place (new modules may be initialised here: the run's seed is set) and return
        what the record should say about the change."""

    def rewrite(self, model: nn.Module) -> dict:
        """:meth:`transform`; what changed (with the parameter counts before and after) is the record's
        ``info["transform"]``."""
        before = count_params(model)
        info = self.transform(model)
        return {"transform": {**info, "params_before": before, "params_after": count_params(model)}}
