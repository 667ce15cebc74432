"""The study file format: :data:`KEYS`, one :class:`Key` per key a study file may hold.

The ``[study]`` table's keys are declared here (:data:`STUDY_KEYS`); every other key is a run option of the
run specification (:data:`harness.run.spec.options.OPTIONS`, its ``scope`` saying its table), with the
option's kind of value (:mod:`harness.run.spec.kinds`), default and help. Everything else is derived from
this table: the checks of :mod:`harness.cli.study.load`, `bench study keys` and the key reference of
``docs/studies.md`` (:func:`markdown`; a test checks that the page holds exactly this text).
"""

from __future__ import annotations

from typing import Any

from harness.cli.args import METRIC_CHOICES
from harness.run.spec.kinds import Text, show
from harness.run.spec.options import OPTIONS, RunOption

#: The tables of a study file, in the order the docs present them.
TABLES = {
    "study": "what the study is: its name, and for `bench reproduce` its reference table and protocol",
    "defaults": "run keys shared by every `[[runs]]` table (a `[[runs]]` table's own value wins)",
    "runs": "one `[[runs]]` table per group of runs: what is trained; a list value expands into one run per item",
    "execution": "where and how the runs train and are recorded: one value for the whole study (not in its digest)",
}
#: Which tables hold which keys: ``run`` keys go in ``[defaults]`` and ``[[runs]]``.
SCOPES = {"study": "study", "defaults": "run", "runs": "run", "execution": "execution"}
#: `bench run` options that say how this invocation behaves, never what a study is: no key of a study file.
CLI_ONLY = frozenset(o.name for o in OPTIONS if o.scope == "command")


#: a key of a study file: a run option (its ``scope`` its table), or a ``[study]`` key declared the same way
Key = RunOption


#: the ``[study]`` table's keys (what the study is); every other key is a run option
STUDY_KEYS: tuple[Key, ...] = (
    Key(
        "name",
        Text(),
        "the study's name: its records name it, its resolved copy is `<out>/<name>-<digest>.study.toml`",
        scope="study",
        field=None,
        none="the file's name without `.toml`",
    ),
    Key(
        "title",
        Text(),
        "one line saying what it is (`bench reproduce`'s table titles)",
        scope="study",
        field=None,
        none="the name",
    ),
    Key(
        "reference",
        Text(),
        "the bundled reference table `bench reproduce` sets the measured numbers beside "
        "(table2 ... table5, smoke, crd, dcff)",
        scope="study",
        field=None,
        none="none: `bench reproduce` refuses the study",
    ),
    Key(
        "metric",
        Text(METRIC_CHOICES),
        "`bench reproduce`'s top-1 protocol: the last, best or `select`ed epoch (`--metric` overrides it)",
        scope="study",
        field=None,
        default="last",
    ),
    Key("protocol_note", Text(), "why that protocol, for the caption", scope="study", field=None, default=""),
)
KEYS: tuple[Key, ...] = STUDY_KEYS + tuple(o for o in OPTIONS if o.scope != "command")
BY_NAME = {key.name: key for key in KEYS}


def keys_of(table: str) -> dict[str, Key]:
    """The keys a table of a study file holds (``defaults`` and ``runs``: the run keys)."""
    return {k.name: k for k in KEYS if k.scope == SCOPES[table]}


def markdown(defaults: dict[str, Any]) -> str:
    """The key reference of ``docs/studies.md``: one table per study-file table. ``defaults``: each key's
    default as TOML (:func:`harness.cli.study.load.defaults`)."""
    lines: list[str] = []
    for table, about in TABLES.items():
        if table == "defaults":
            continue
        heading = "[[runs]] and [defaults]" if table == "runs" else f"[{table}]"
        lines += [
            f"#### `{heading}`",
            "",
            about[0].upper() + about[1:] + ".",
            "",
            "| key | type | default | option | meaning |",
            "|---|---|---|---|---|",
        ]
        for key in keys_of(table).values():
            value = defaults.get(key.name)
            shown = key.shown_default or (f"`{show(value)}`" if value not in (None, {}) else key.none)
            lines.append(
                f"| `{key.name}` | {key.kind.what} | {shown} | {f'`{key.flag}`' if key.flag else '-'} | {key.help} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
