"""The linter's and the type checker's configuration (pyproject.toml) against the code it names; the
generated declaration of ``RunRequest`` that type checkers read against the class made at run time; the
``type: ignore`` comments (at most 15, each with its reason). CI runs ruff and mypy themselves (.ci/run)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
MYPY = CONFIG["tool"]["mypy"]
#: what the issue asks to be strict: the public API, the kits, the hook specifications
STRICT = {"harness.api", "harness.kits", "harness.plugins.hookspecs"}


def _module_exists(pattern: str) -> bool:
    base = pattern.removesuffix(".*")
    path = ROOT / Path(*base.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_strict_modules_exist_and_cover_the_plugin_api() -> None:
    strict = [o for o in MYPY["overrides"] if o.get("disallow_untyped_defs")]
    assert len(strict) == 1, "one override holds the --strict flags"
    modules = strict[0]["module"]
    assert [m for m in modules if not _module_exists(m)] == [], "a strict module that does not exist"
    named = {m.removesuffix(".*") for m in modules}
    assert STRICT <= named and "harness.kits.*" in modules, modules
    # every flag of --strict that has a per-module form (mypy --help: "Strict mode" enables them)
    flags = {
        "strict_equality",
        "check_untyped_defs",
        "disallow_any_generics",
        "disallow_subclassing_any",
        "disallow_untyped_calls",
        "disallow_untyped_defs",
        "disallow_incomplete_defs",
        "disallow_untyped_decorators",
        "warn_return_any",
        "extra_checks",
    }
    assert flags <= {k for k, v in strict[0].items() if v is True}
    no_reexport = [o for o in MYPY["overrides"] if o.get("implicit_reexport") is False]
    assert set(no_reexport[0]["module"]) == set(modules) - {"harness.api"}


def test_the_typed_declaration_of_run_request_is_current() -> None:
    """The class type checkers read (harness/run/request.py, under TYPE_CHECKING) is the one the run
    specification gives: same fields, same order, defaults where the class made at run time has them."""
    from harness.run import request

    source = (ROOT / "harness/run/request.py").read_text(encoding="utf-8")
    assert request.regenerate(source) == source, "regenerate: python -m harness.run.request"
    made = dataclasses.fields(request.RunRequest)
    assert [f.name for f in made] == list(request.field_types())
    defaults = {
        f.name for f in made if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }
    assert defaults == set(request.field_types()) - set(request.REQUIRED)
    declared = re.findall(r"^        (\w+): (.+?)( = _from_the_specification\(\))?$", request.declaration(), re.M)
    assert {name for name, _, default in declared if default} == defaults


def test_the_declared_types_hold_for_a_request_from_the_command_line() -> None:
    """Each field of a parsed `bench run` request holds a value of its declared type (or None where the
    declaration allows it): the declaration says what the parser gives."""
    from pathlib import PurePath

    from harness.cli.args import run_parser, run_request
    from harness.run.request import field_types

    args = run_parser().parse_args(
        [
            "--methods",
            "kd,baseline",
            "--arch",
            "resnet8",
            "--epochs",
            "2",
            "--eval-noise",
            "0.1",
            "--opt",
            "kd.temperature=2",
            "--threads",
            "1",
        ]
    )
    req = run_request(args)
    simple = {"str": str, "int": int, "float": float, "bool": bool, "Path": PurePath}
    for name, kind in field_types().items():
        value = getattr(req, name)
        if value is None:
            assert kind.endswith("| None"), (name, kind)
            continue
        outer = kind.removesuffix(" | None").split("[")[0].split(" | ")[0]
        expected = {"list": list, "tuple": tuple, "dict": dict}.get(outer) or simple.get(outer)
        if expected is not None:
            assert isinstance(value, expected), (name, kind, value)


def test_type_ignores_are_few_and_each_says_why() -> None:
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True)
    files = (
        tracked.stdout.split()
        if tracked.returncode == 0
        else [
            str(p.relative_to(ROOT))
            for d in ("harness", "plugins", "tests", "benchmarks", "scripts", "docs")
            for p in (ROOT / d).rglob("*.py")
        ]
    )
    ignores = [
        (f, line)
        for f in files
        if (ROOT / f).is_file() and f != "tests/test_lint.py"
        for line in (ROOT / f).read_text(encoding="utf-8").splitlines()
        if "# type: ignore" in line
    ]
    assert len(ignores) <= 15, ignores
    bare = [(f, line.strip()) for f, line in ignores if not re.search(r"# type: ignore\[[\w,\s-]+\]\s+#\s*\S", line)]
    assert bare == [], "a type: ignore names its codes and says why after them"
