"""A method's options are its own and every one its base classes declare: completed when it is registered.

A method class declares ``options = {...}``; a subclass (of a kit's ``AttentionMethod``, of another method)
that declares its own would replace its bases' mapping, losing options its code still reads (an attention
method's ``placement``). Registration completes the class's mapping with every inherited option it does not
redeclare (:func:`complete_options`). A redeclared option may change its default and help, not what it takes:
another type, other choices or other limits are an error at registration naming both classes.

Options are read by duck typing (``default``, ``choices``, ``limits``): this layer imports no method code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _takes(option: Any) -> str:
    """What an option takes, for the error line: ``a str, one of auto, block, level``."""
    kind = type(option.default).__name__
    text = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    if option.choices is not None:
        text += ", one of " + ", ".join(map(str, option.choices))
    limits = option.limits
    if limits is not None and limits.short() != "any":
        text += f", {limits.short()}"
    return text


def _same_kind(base: Any, new: Any) -> bool:
    """Whether ``new`` takes what ``base`` takes (type, choices, limits; the default and help may differ)."""
    return (
        type(base.default) is type(new.default)
        and (None if base.choices is None else set(base.choices)) == (None if new.choices is None else set(new.choices))
        and base.limits == new.limits
    )


def complete_options(cls: type) -> str | None:
    """Give method class ``cls`` every option its bases declare and it does not redeclare (its bases' first,
    in declaration order); None, or what is wrong: an option redeclared as something else."""
    merged: dict[str, Any] = {}
    owner: dict[str, type] = {}
    for klass in reversed(cls.__mro__):
        own = vars(klass).get("options")
        if not isinstance(own, Mapping):
            continue
        for name, option in own.items():
            if not all(hasattr(option, a) for a in ("default", "choices", "limits")):
                return None  # not an Option: the registry's own check names it
            if name in merged and not _same_kind(merged[name], option):
                return (
                    f"its option '{name}' ({klass.__qualname__}: {_takes(option)}) redeclares "
                    f"{owner[name].__qualname__}'s '{name}' ({_takes(merged[name])}); keep what it takes "
                    f"(a new default is fine) or give it another name"
                )
            merged[name] = option
            owner.setdefault(name, klass)
    if list(merged.items()) != list(dict(getattr(cls, "options", {})).items()):
        cls.options = merged  # type: ignore[attr-defined]  # cls: any class here (a method class, checked later)
    return None
