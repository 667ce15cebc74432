"""Arguments shared by the ``bench`` commands and their conversion to run requests.

Importing this module is cheap (no torch, no plugins): ``bench --help`` builds every parser from it. What a
command needs to run is imported when it runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, NoReturn

from harness.core.constraints import NON_NEGATIVE, Constraint
from harness.core.errors import UsageError
from harness.run.request import default_cache
from harness.run.spec.kinds import Distortions, Integer, Items, Settings, Text, csv_list
from harness.run.spec.kinds import Number as NumberKind
from harness.run.spec.options import OPTIONS, TARGET, TARGETS, RunOption, request_values

if TYPE_CHECKING:
    from rich.console import Console

    from harness.core.progress import Reporter
    from harness.run.request import RunRequest

__all__ = ["default_cache", "csv_list"]  # re-exported for the commands
#: ``--metric`` choices and what each reads (as :data:`harness.results.aggregation.METRICS`)
METRIC_CHOICES = ("last", "best", "selected")
TABLE_FORMATS = ("rich", "markdown", "csv", "json")


class Number:
    """An argparse ``type`` of the commands' own options (not run options): a number of ``kind`` (int or float)
    within ``constraint`` (see :mod:`harness.core.constraints`), read as a run option's number is
    (:mod:`harness.run.spec.kinds`): NaN, infinities and values out of range are refused as the argument's
    one-line error, naming the range, before anything runs."""

    template = "{}"

    def __init__(self, kind: type, constraint: Constraint) -> None:
        self.kind, self.constraint = kind, constraint
        self.parse = (Integer if kind is int else NumberKind)(constraint).parse
        self.__name__ = kind.__name__  # argparse: "invalid int value: 'two'"

    def __call__(self, text: str) -> object:
        return self.parse(text)


class Parser(argparse.ArgumentParser):
    """argparse with bench's one-line errors: ``bench: error: ...`` and exit 2, no usage block."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} -h')")


class ArgType:
    """A run option's kind (:mod:`harness.run.spec.kinds`) as an argparse ``type``: its one-line error is the
    argument's error. ``constraint``, ``kind`` and ``template`` say what numbers it takes (tests feed it)."""

    def __init__(self, option: RunOption) -> None:
        self.option, self.parse = option, option.kind.parse
        of = option.kind.of if isinstance(option.kind, Items) else option.kind
        constraint = NON_NEGATIVE if isinstance(of, Distortions) else getattr(of, "constraint", None)
        self.__name__ = "value"
        if constraint is not None:  # a numeric option: what it takes, for its one-line errors and the tests
            self.constraint, self.kind = constraint, int if isinstance(of, Integer) else float
            self.template = "noise:{}" if isinstance(of, Distortions) and not of.prefix else "{}"
            self.__name__ = self.kind.__name__

    def __call__(self, text: str) -> Any:
        return self.parse(text)


class SettingsAction(argparse.Action):
    """A repeatable ``NAME=VALUE`` option (``--opt``, ``--slurm-opt``): each item merged into one table."""

    def __init__(self, option_strings: list[str], dest: str, *, setting: Settings, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.setting = setting

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        path, value = self.setting.item(str(values), option_string or self.option_strings[0])
        setattr(namespace, self.dest, self.setting.merge(dict(getattr(namespace, self.dest) or {}), path, value))


ACTIONS: dict[str, type[argparse.Action]] = {
    "value": argparse._StoreAction,
    "on": argparse._StoreTrueAction,
    "off": argparse._StoreFalseAction,
    "both": argparse.BooleanOptionalAction,
    "optional": argparse._StoreAction,
    "repeat": SettingsAction,
}


def _recorded(base: type[argparse.Action]) -> type[argparse.Action]:
    """``base`` that also adds its destination to the namespace's ``given``: the options the command line set
    itself (a study file's values give way to these only), known from the one parse."""

    class Recorded(base):  # type: ignore[valid-type,misc]  # a class made per argparse action class (a variable base)
        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            super().__call__(parser, namespace, values, option_string)
            namespace.given = frozenset(getattr(namespace, "given", frozenset())) | {self.dest}

    return Recorded


RECORDED = {style: _recorded(action) for style, action in ACTIONS.items()}


def add_option(p: Any, option: RunOption, default: Any, required: bool = False) -> None:
    """``option`` as an argument of parser (or group) ``p``, with ``default`` (``required``: argparse refuses a
    command line without it)."""
    assert option.flag is not None
    said = option.default_text(default)
    helped = option.help + (f" (default: {said})" if said else "")
    kwargs: dict[str, Any] = {"dest": option.name, "default": default, "help": helped, "action": RECORDED[option.style]}
    if required:
        kwargs["required"] = True
    if option.style in ("value", "optional"):
        if isinstance(option.kind, Text):  # the text is the value: no type (argparse checks the choices)
            kwargs["choices"] = option.kind.choices or None
        else:
            kwargs["type"] = ArgType(option)
        if option.metavar:
            kwargs["metavar"] = option.metavar
    if option.style == "optional":
        kwargs.update(nargs="?", const=option.const)
    if option.style == "repeat":
        kwargs.update(setting=option.kind, metavar=option.metavar)
    p.add_argument(*option.flags[:1], **kwargs)


def add_options(
    p: argparse.ArgumentParser, names: list[str], defaults: dict[str, Any] | None = None, required: tuple[str, ...] = ()
) -> None:
    """The run options ``names`` (:data:`~harness.run.spec.options.OPTIONS`, in its order) as arguments of
    ``p``, in their help groups; ``defaults`` replaces the specification's defaults of some; the options in
    ``required`` must be given."""
    groups: dict[str, Any] = {}
    for option in OPTIONS:
        if option.name not in names or option.flag is None:
            continue
        group = option.group if option.group not in ("", TARGET) else None
        target = p if group is None else groups.setdefault(group, p.add_argument_group(group))
        default = (defaults or {}).get(option.name, option.default)
        add_option(
            target, option, list(default) if isinstance(default, list) else default, required=option.name in required
        )


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """What `bench run` trains: methods, architecture, teacher; a study file declares them instead."""
    add_options(p, list(TARGETS))


def add_run_arguments(p: argparse.ArgumentParser, recipe_default: str | None, dataset_default: str | None) -> None:
    """The options shared by `bench run` and `bench reproduce`: every run option but the targets (a command
    without a default of its own for the recipe or the dataset takes its table's)."""
    add_options(
        p, [o.name for o in OPTIONS if o.name not in TARGETS], {"recipe": recipe_default, "dataset": dataset_default}
    )


class VersionAction(argparse.Action):
    """--version: the package version and, from a checkout, the git commit (looked up only when asked)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="print the package version (and the git commit in a checkout) and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from harness.results.records import version_line

        print(version_line())
        parser.exit()


def run_parser() -> argparse.ArgumentParser:
    """A parser of `bench run`'s options (no study argument)."""
    p = Parser(prog="bench run", add_help=False)
    add_target_arguments(p)
    add_run_arguments(p, recipe_default="crd", dataset_default="cifar10")
    return p


def run_request(args: argparse.Namespace, **fields: object) -> "RunRequest":
    """The :class:`~harness.run.request.RunRequest` of parsed run options (the targets too, where given):
    each option's typed value into its field (:func:`~harness.run.spec.options.request_values`)."""
    from harness.run.request import RunRequest, default_cache

    values = {o.name: getattr(args, o.name) for o in OPTIONS if hasattr(args, o.name)}
    if values.get("cache_dir") is None:
        values["cache_dir"] = default_cache()
    return RunRequest(**{**request_values(values), **fields})


request_from_args = run_request  # `bench reproduce` and tests: the same conversion


def reporter_for(args: argparse.Namespace, console: "Console") -> "Reporter":
    from rich.console import Console

    from harness.core.progress import Reporter, RichReporter

    return Reporter(console) if args.quiet else RichReporter(Console(stderr=True))
