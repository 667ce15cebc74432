"""``timm:<name>``: any timm model, created untrained at the dataset's input size and class count.

Pretrained weights are not loaded (a benchmark trains every method from the same starting point). The model
keeps timm's own stem: on 32x32 inputs ImageNet stems downsample early, as the user asked for.
"""

from __future__ import annotations

from typing import Any

import timm
from torch import nn

from harness.api import ArchSpec, UsageError, unknown_name
from plugins.archs.timm_adapter import adapt_timm


def timm_model(spec: ArchSpec) -> nn.Module:
    name = spec.arg or ""
    if name not in timm.list_models():
        raise unknown_name("timm model", name, timm.list_models())
    kwargs: dict[str, Any] = {"pretrained": False, "num_classes": spec.num_classes, "in_chans": spec.in_chans}
    try:
        model = timm.create_model(name, img_size=spec.input_size, **kwargs)
    except TypeError:  # models without an img_size argument (convolutional ones)
        model = timm.create_model(name, **kwargs)
    except Exception as exc:
        raise UsageError(f"timm could not build '{name}' for {spec.input_size}px input: {exc}") from None
    return adapt_timm(model, spec, family=f"timm:{name}")
