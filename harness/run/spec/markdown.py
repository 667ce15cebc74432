"""The option tables of ``docs/commands.md``, generated from the run specification.

``docs/commands.md`` holds them between ``<!-- run-options:start COMMAND -->`` and ``<!-- run-options:end -->``
(a test checks that they are exactly this text). Regenerate them in place with
``python -m harness.run.spec.markdown docs/commands.md``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from harness.run.spec.kinds import Text
from harness.run.spec.options import OPTIONS, TARGET, TARGETS, RunOption

#: the run options of each command's tables, and the defaults it gives some of them
COMMANDS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "run": (tuple(o.name for o in OPTIONS if o.flag), {}),
    "reproduce": (
        tuple(o.name for o in OPTIONS if o.flag and o.name not in TARGETS),
        {"recipe": "the table's", "dataset": "the table's"},
    ),
}
BLOCK = re.compile(r"(<!-- run-options:start (\w+) -->\n)(.*?)(<!-- run-options:end -->)", re.DOTALL)


def spelled(option: RunOption) -> str:
    """``--epochs`` EPOCHS, ``--amp``, ``--no-amp``, ``--schedule`` (its choices are in the help)."""
    flags = ", ".join(f"`{flag}`" for flag in option.flags)
    if option.style in ("on", "off", "both"):
        return flags
    if isinstance(option.kind, Text) and option.kind.choices and not option.metavar:
        return flags
    return f"{flags} {option.metavar or option.name.upper()}"


def described(option: RunOption, default: Any) -> str:
    text = option.help
    if isinstance(option.kind, Text) and option.kind.choices:
        text += f" (one of: {', '.join(option.kind.choices)})"
    said = option.default_text(default)
    text += f" (default: {said})" if said else ""
    return text.replace("|", "\\|")


def tables(command: str) -> str:
    """The option tables of ``bench COMMAND``'s run options: the general ones, then one per help group."""
    names, defaults = COMMANDS[command]
    groups: dict[str, list[str]] = {}
    for option in OPTIONS:
        if option.name in names:
            group = "options" if option.group in ("", TARGET) else option.group
            default = defaults.get(option.name, option.default)
            groups.setdefault(group, []).append(f"| {spelled(option)} | {described(option, default)} |")
    return "\n".join(f"| {group} | |\n| --- | --- |\n" + "\n".join(rows) + "\n" for group, rows in groups.items())


def regenerate(text: str) -> str:
    """``text`` (a page) with each run-options block replaced by its command's :func:`tables`."""
    return BLOCK.sub(lambda m: m[1] + tables(m[2]) + m[4], text)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        page = Path(name)
        page.write_text(regenerate(page.read_text()))
