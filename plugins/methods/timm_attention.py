"""``attn:TYPE``: any attention type of timm's ``create_attn`` (``timm.layers.create_attn``) as a method.

``attn:eca``, ``attn:gc``, ``attn:cbam``, ...: ``create_attn(TYPE, channels, **options)`` at every site of the
placement (``block``: the architecture's declared attention sites, after a residual block's last BN and
before the add), trained with cross-entropy like every attention method and counted the same way. The types
are those of the installed timm (read from its ``get_attn``); an unknown one is one line naming them. Each
type's options are its module's keyword arguments with a number, text or boolean default, at timm's
defaults (the keywords ``create_attn`` fixes for a type, such as ``gca``'s ``fuse_add=True``, are its
defaults here): ``bench list methods attn:eca``.

timm's defaults are not the papers' (nor this harness's ``se``/``cbam``): ``attn:se`` has biases and rounds
C/r to a multiple of 8 (``se`` has neither: ``--opt attn:se.bias=false --opt attn:se.rd_divisor=1`` gives
its counts); ``attn:cbam`` has no MLP biases (``cbam`` has them: ``--opt attn:cbam.mlp_bias=true``) and keeps
PyTorch's init (``cbam``'s official init changes values, not counts). ``eca`` and ``gc`` are the papers'
settings as named methods. Types that timm's factory describes as replacing a network's convolutions (``sk``,
``splat``, ``lambda``, ``bottleneck``, ``halo``) are inserted at the sites like the others (with stride 1 and
their input width as output width), not swapped for the block's convolutions.
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
from typing import Any

from torch import nn

from harness.api import NON_NEGATIVE, NON_NEGATIVE_INT, Option, UsageError
from harness.kits.attention import AttentionMethod

#: keyword arguments that are not options (where modules are built, and their first, the channel count)
NOT_OPTIONS = {"device", "dtype"}


@functools.lru_cache(maxsize=1)
def attention_types() -> tuple[str, ...]:
    """The attention types timm's ``get_attn`` accepts (the installed timm's, from its source: the names
    ``attn_type`` is compared with), in its order."""
    import timm.layers.create_attn  # noqa: F401  (the module; the package re-exports a function of its name)

    source = inspect.getsource(sys.modules["timm.layers.create_attn"].get_attn)
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "attn_type":
            found += [c.value for c in node.comparators if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return tuple(dict.fromkeys(found))


def module_class(attn_type: str) -> Any:
    """What ``create_attn`` builds for ``attn_type`` (a class, or a partial of one with fixed keywords)."""
    return sys.modules["timm.layers.create_attn"].get_attn(attn_type)


def type_options(attn_type: str) -> dict[str, Option]:
    """The options of ``attn:<attn_type>``: the module's keyword arguments with a bool, int, float or str
    default (an int default of a ``float`` argument is a float), at timm's defaults or the keywords
    ``create_attn`` fixes for the type; numbers not negative."""
    made = module_class(attn_type)
    fixed = dict(getattr(made, "keywords", None) or {})
    params = list(inspect.signature(getattr(made, "func", made)).parameters.values())[1:]
    options: dict[str, Option] = {}
    for p in params:
        default = fixed.get(p.name, p.default)
        if (
            p.name in NOT_OPTIONS
            or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            or type(default) not in (bool, int, float, str)
        ):
            continue
        if type(default) is int and p.annotation in (float, "float"):
            default = float(default)
        where = "create_attn's" if p.name in fixed else "timm's default"
        extra: dict[str, Any] = (
            {"constraint": {int: NON_NEGATIVE_INT, float: NON_NEGATIVE}[type(default)]}
            if type(default) in (int, float)
            else {}
        )
        options[p.name] = Option(
            default,
            f"{made.func.__name__ if hasattr(made, 'func') else made.__name__} argument {p.name} ({where})",
            **extra,
        )
    return options


class TimmAttention(AttentionMethod):
    """Registered as the prefix ``attn:``; ``variant(TYPE)`` is the class of one type, with its options."""

    attn_type: str = ""

    @classmethod
    def variant(cls, arg: str) -> type[TimmAttention]:
        types = attention_types()
        if arg not in types:
            raise UsageError(
                f"unknown attention type '{arg}' (attn:{arg}); timm {_timm_version()}'s create_attn "
                f"has: {', '.join(types)}"
            )
        return type(
            f"TimmAttention[{arg}]",
            (cls,),
            {"attn_type": arg, "options": {**AttentionMethod.options, **type_options(arg)}},
        )

    def make_module(self, channels: int) -> nn.Module:
        from timm.layers import create_attn

        kwargs = {k: v for k, v in self.opts.items() if k not in AttentionMethod.options}
        try:
            return create_attn(self.attn_type, channels, **kwargs)
        except Exception as exc:  # timm asserts what it cannot build (an even kernel, a missing feat_size)
            raise UsageError(
                f"method '{self.name}': timm's create_attn('{self.attn_type}', {channels}, "
                f"{', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) fails: "
                f"{type(exc).__name__}: {exc}".replace("\n", " ")
            ) from None


def _timm_version() -> str:
    import timm

    return timm.__version__
