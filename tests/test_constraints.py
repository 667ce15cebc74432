"""Declared limits of every number (issue 22, class 2): each numeric option of the CLI, of recipes and of
methods refuses NaN, infinities and out-of-range values before anything is prepared, with one line naming the
option and the allowed range (exit 2); values its declared constraint allows are accepted.

The options are found by introspection (every argparse parser of every command, every option of every
registered method), never from a hand list: a new option is covered, and one without a declared constraint
fails :func:`test_every_numeric_cli_option_declares_its_limits`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator

import pytest

from harness.cli import build_parser, main
from harness.core.constraints import Constraint, between
from harness.core.errors import UsageError
from harness.core.recipes import Recipe
from harness.plugins.manager import load_plugins

#: what the property feeds every numeric option: NaN, both infinities, zero and negatives
BAD_CANDIDATES = ("nan", "inf", "-inf", "0", "-1", "-2.5")
#: values for the required arguments of commands (not numeric options: the options under test are found)
REQUIRED = {"--methods": "baseline", "--arch": "resnet8", "table": "smoke"}


def commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    yield from sub.choices.items()


def required_args(parser: argparse.ArgumentParser) -> list[str]:
    args = []
    for action in parser._actions:
        if action.option_strings and action.required:
            args += [action.option_strings[0], REQUIRED[action.option_strings[0]]]
        elif not action.option_strings and action.nargs is None and action.dest != "help":
            args.append(REQUIRED[action.dest])
    return args


def numeric_cli_options() -> list[tuple[str, str, object, list[str]]]:
    """(command, flag, argparse type, required arguments) of every option whose type declares limits."""
    found = []
    for name, parser in commands():
        for action in parser._actions:
            if action.option_strings and hasattr(action.type, "constraint"):
                found.append((name, action.option_strings[0], action.type, required_args(parser)))
    return found


def legal(kind: type | None, constraint: Constraint, text: str) -> bool:
    value = float(text)
    if kind is int and not (math.isfinite(value) and value.is_integer()):
        return False
    return constraint.allows(value)


def test_every_numeric_cli_option_declares_its_limits() -> None:
    """No option parses a bare int or float (which would take NaN, inf, 0 and negatives without a word)."""
    bare = [
        f"{name} {action.option_strings[0] if action.option_strings else action.dest}"
        for name, parser in commands()
        for action in parser._actions
        if action.type in (int, float)
    ]
    assert bare == []
    flags = {flag for _, flag, _, _ in numeric_cli_options()}
    # the property below covers the options the issue names (and every other one it finds)
    assert {
        "--lr",
        "--momentum",
        "--weight-decay",
        "--gamma",
        "--epochs",
        "--batch-size",
        "--milestones",
        "--threads",
        "--latency-batch",
        "--train-subset",
        "--test-subset",
        "--val-split",
        "--workers",
        "--retries",
        "--per-gpu",
        "--throughput",
        "--tolerance",
        "--classes",
        "--in-chans",
        "--input-size",
        "--eval-noise",
        "--eval-distort",
        "--seeds",
    } <= flags


@pytest.mark.parametrize(
    "command, flag, kind, required", numeric_cli_options(), ids=[f"{c} {f}" for c, f, _, _ in numeric_cli_options()]
)
def test_numeric_cli_options_refuse_nan_inf_zero_negative(
    capsys, command: str, flag: str, kind: object, required: list[str]
) -> None:
    template = getattr(kind, "template", "{}")
    for text in BAD_CANDIDATES:
        arg = f"{flag}={template.format(text)}"
        if legal(getattr(kind, "kind", float), kind.constraint, text):
            build_parser().parse_args([command, *required, arg])  # accepted: the constraint allows it
            continue
        assert main([command, *required, arg]) == 2, arg
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith("bench: error: argument ") and flag in err[0], (arg, err)
        if "invalid" not in err[0] and "comma-separated" not in err[0]:  # a number, refused by its range
            assert kind.constraint.describe() in err[0], err[0]


def test_check_tolerance_inf_is_refused(capsys) -> None:
    """An infinite tolerance would pass every row: the CI gate would check nothing."""
    assert main(["check", "--reference", "smoke", "--tolerance", "inf"]) == 2
    assert "argument --tolerance: must be a finite number in [0, 100], got 'inf'" in capsys.readouterr().err


# ---- method options --------------------------------------------------------------------------------------


def numeric_method_options() -> list[tuple[str, str, object]]:
    plugins = load_plugins(entry_points=False, warn=False)  # the built-in methods (installed ones are their own)
    return [
        (entry.name, key, option)
        for entry in plugins.methods.entries()
        for key, option in entry.obj.options.items()
        if option.numeric
    ]


def test_every_builtin_numeric_method_option_declares_a_constraint_its_default_meets() -> None:
    options = numeric_method_options()
    assert len(options) > 30
    undeclared = [f"{m}.{k}" for m, k, o in options if o.constraint is None]
    assert undeclared == []
    for method, key, option in options:
        assert option.limits.allows(option.default), (method, key)


@pytest.mark.parametrize(
    "method, key, option", numeric_method_options(), ids=[f"{m}.{k}" for m, k, _ in numeric_method_options()]
)
def test_method_options_refuse_nan_inf_zero_negative(capsys, tmp_path, method: str, key: str, option: object) -> None:
    cls = load_plugins(entry_points=False, warn=False).methods.resolve(method).obj
    kind = type(option.default)
    for text in BAD_CANDIDATES:
        if legal(kind, option.limits, text):
            cls.parse_options(method, {key: text})
            continue
        with pytest.raises(UsageError) as info:
            cls.parse_options(method, {key: text})
        assert f"{method}.{key}" in str(info.value)
    # and through the command line: one line, exit 2, before any data is read
    args = [
        "run",
        "--methods",
        method,
        "--arch",
        "resnet8",
        "--opt",
        f"{method}.{key}=nan",
        "--dataset",
        "cifar10-mini",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "out"),
        "--quiet",
    ]
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: error: ")]
    assert len(err) == 1 and f"option {method}.{key}" in err[0] and "nan" in err[0], err
    assert not (tmp_path / "cache").exists()


def test_a_plugin_declares_limits_with_minimum_and_maximum() -> None:
    from harness.api import FRACTION, Option

    share = Option(0.5, "a share", minimum=0, maximum=1)
    assert share.parse("0", "m.share") == 0.0 and share.parse("1", "m.share") == 1.0
    for bad in ("1.5", "-0.1", "nan"):
        with pytest.raises(UsageError, match=r"option m\.share must be a finite number in \[0, 1\], got"):
            share.parse(bad, "m.share")
    with pytest.raises(UsageError, match=r"in \(0, 1\]"):
        Option(0.5, "a share", constraint=FRACTION).parse("0", "m.share")
    count = Option(3, "a count", minimum=1)
    with pytest.raises(UsageError, match="must be an integer >= 1, got 0"):
        count.parse("0", "m.count")
    with pytest.raises(UsageError, match="expected an int, got 'nan'"):
        count.parse("nan", "m.count")
    assert Option(1.0, "free").parse("-3", "m.free") == -3.0  # undeclared: any finite number
    with pytest.raises(UsageError, match="finite"):
        Option(1.0, "free").parse("inf", "m.free")


def test_a_method_whose_default_breaks_its_own_constraint_is_skipped(capsys) -> None:
    from harness.api import POSITIVE, Method, Option, hookimpl

    class Broken(Method):
        options = {"t": Option(0.0, "temperature", constraint=POSITIVE)}

    class Plugin:
        @hookimpl
        def bench_register_methods(self, register):
            register("broken", Broken)

    plugins = load_plugins(entry_points=False, extra=[("broken-plugin", Plugin())])
    assert "broken" not in plugins.methods
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("bench: warning: plugin 'broken-plugin'") and "option t must be a finite number > 0" in line


# ---- recipes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("lr", math.nan),
        ("lr", 0.0),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("weight_decay", math.inf),
        ("gamma", 0.0),
        ("epochs", 0),
        ("batch_size", 1),
        ("warmup_epochs", -1),
        ("epochs", 2.5),
    ],
)
def test_recipes_refuse_values_outside_their_limits(field: str, value: float) -> None:
    base = Recipe("r", epochs=10, batch_size=8, lr=0.1, weight_decay=0.0)
    with pytest.raises(UsageError, match=f"recipe 'r': {field} must be"):
        base.with_overrides(**{field: value})


def test_every_registered_recipe_is_valid_and_a_plugins_bad_recipe_is_skipped(capsys) -> None:
    from harness.api import hookimpl

    for entry in load_plugins(warn=False).recipes.entries():
        entry.obj.validate()

    class Plugin:
        @hookimpl
        def bench_register_recipes(self, register):
            register("nan-lr", Recipe("nan-lr", epochs=3, batch_size=8, lr=math.nan, weight_decay=0.0))

    plugins = load_plugins(entry_points=False, extra=[("recipes-plugin", Plugin())])
    assert "nan-lr" not in plugins.recipes
    (line,) = capsys.readouterr().err.splitlines()
    assert "recipe 'nan-lr': lr must be a finite number > 0, got nan" in line


# ---- architecture options and the constraint itself ------------------------------------------------------


def test_architecture_float_options_refuse_nan() -> None:
    from harness.models.arch_options import parse_arch_options

    with pytest.raises(UsageError, match="architecture option m.width must be a finite number, got nan"):
        parse_arch_options("m", "width=nan", {"width": 1.0})


def test_constraint_texts_and_sentinels() -> None:
    split = Constraint(minimum=1, integer=True, also=(-1,))
    assert split.allows(-1) and split.allows(3) and not split.allows(0) and not split.allows(-2)
    assert split.describe() == "an integer >= 1, or -1"
    half_open = between(0, 1, exclusive_maximum=True)
    assert half_open.describe() == "a finite number in [0, 1)" and not half_open.allows(True)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "101", "-1"])
def test_a_reference_value_outside_its_range_is_refused(capsys, tmp_path, value: str) -> None:
    """A reference top-1 of -inf (or NaN, or 101) would pass (or fail) every check: refused, with its line."""
    from harness.results.reference import COLUMNS

    ref = tmp_path / "ref.csv"
    ref.write_text(",".join(COLUMNS) + f"\nt,cifar10,resnet8,,baseline,,top1,{value},last,3,mine\n")
    assert main(["check", str(tmp_path), "--reference", str(ref)]) == 2
    assert "ref.csv:2: the top1 value must be a finite number in [0, 100], got" in capsys.readouterr().err
