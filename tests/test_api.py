"""The public plugin API: plugins import only harness.api and the kits; registration checks what it gets;
the old vocabulary of architecture "stages" still works for a release, with a warning."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness.api as api
from harness.api import Method, Option, hookimpl
from harness.plugins.manager import load_plugins

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ("harness.api", "harness.kits")


def harness_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a harness module in a file, at any depth (lazy ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [(node.lineno, n) for n in names if n == "harness" or n.startswith("harness.")]
    return found


def test_plugins_import_only_the_public_api() -> None:
    files = sorted((ROOT / "plugins").rglob("*.py")) + sorted((ROOT / "examples").rglob("*.py"))
    assert len(files) > 30
    private = [
        f"{f.relative_to(ROOT)}:{line}: {module}"
        for f in files
        for line, module in harness_imports(f)
        if not (module in PUBLIC or module.startswith("harness.kits."))
    ]
    assert private == [], "plugins must import from harness.api or harness.kits only:\n" + "\n".join(private)


def test_the_check_catches_a_private_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from harness.train.executor import StageRunner\n\ndef f():\n    import harness.run.prepare\n")
    assert [m for _, m in harness_imports(bad)] == ["harness.train.executor", "harness.run.prepare"]


def test_every_public_name_resolves() -> None:
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    with pytest.raises(AttributeError, match="public API"):
        api.StageRunner  # noqa: B018  (private: not exported)


def test_the_public_names_are_declared_once_by_their_imports(tmp_path: Path) -> None:
    """api.py's ``if TYPE_CHECKING:`` imports are its one list: a name imported there is public (lazily, by
    its module), and only such a name is."""
    import importlib.util

    source = Path(api.__file__).read_text()
    private = "    from harness.train.executor import StageRunner\n"
    added = source.replace("if TYPE_CHECKING:\n", "if TYPE_CHECKING:\n" + private, 1)
    copy = tmp_path / "api_copy.py"
    copy.write_text(added)
    spec = importlib.util.spec_from_file_location("api_copy", copy)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from harness.train.executor import StageRunner

    assert set(module.__all__) == set(api.__all__) | {"StageRunner"}
    assert module.StageRunner is StageRunner and module.hookimpl is api.hookimpl


class NotAMethod:
    pass


class GoodMethod(Method):
    options = {"alpha": Option(0.5, "a weight")}


class WrongKinds:
    """A plugin that registers a good method, then objects of the wrong kind."""

    def __init__(self, kind: str, obj: object) -> None:
        self.kind, self.obj = kind, obj

    @hookimpl
    def bench_register_methods(self, register):
        register("good-one", GoodMethod)
        if self.kind == "methods":
            register("bad-one", self.obj)

    @hookimpl
    def bench_register_archs(self, register):
        if self.kind == "archs":
            register("bad-arch", self.obj)

    @hookimpl
    def bench_register_recipes(self, register):
        if self.kind == "recipes":
            register("bad-recipe", self.obj)

    @hookimpl
    def bench_register_executors(self, register):
        if self.kind == "executors":
            register("bad-executor", self.obj)

    @hookimpl
    def bench_register_loggers(self, register):
        if self.kind == "loggers":
            register("bad-logger", self.obj)


@pytest.mark.parametrize(
    "kind, obj, expected",
    [
        ("methods", NotAMethod, "not a subclass of harness.api.Method"),
        ("methods", GoodMethod("an-instance"), "not a subclass of harness.api.Method"),
        ("archs", 42, "not callable"),
        ("recipes", {"epochs": 3}, "not a harness.api.Recipe"),
        ("executors", GoodMethod, "not a subclass of harness.api.Backend"),
        ("loggers", GoodMethod, "not a subclass of harness.api.Logger"),
    ],
)
def test_registration_checks_the_kind_of_object(capsys, kind: str, obj: object, expected: str) -> None:
    plugins = load_plugins(entry_points=False, extra=[("wrong", WrongKinds(kind, obj))])
    err = capsys.readouterr().err.strip().splitlines()
    (line,) = [e for e in err if "wrong" in e]
    assert line.startswith("bench: warning: plugin 'wrong'") and expected in line and "registered" in line
    info = next(p for p in plugins.plugins if p.name == "wrong")
    assert info.error and "good-one" not in plugins.methods  # the whole plugin is skipped, not half of it
    assert "baseline" in plugins.methods  # the others keep working


def test_registration_completes_no_builtin_methods_options() -> None:
    """Every built-in method declares the options it inherits already: completing them at registration adds
    none and changes none, so no built-in method's config (part of its stage keys) changes. (In a fresh
    process: the classes are imported by reference, not registered, and compared with their completion.)"""
    import subprocess
    import sys

    code = (
        "from harness.plugins.manager import load_plugins; from harness.plugins.options import complete_options\n"
        "for e in load_plugins(warn=False).methods.entries():\n"
        "    cls = e._target.load() if e.lazy else e.obj; before = list(cls.options.items())\n"
        "    assert complete_options(cls) is None and list(cls.options.items()) == before, e.name\n"
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "ok", done.stderr


def test_placement_takes_the_current_names_only() -> None:
    """The 0.1 vocabulary (``placement=stage``, ``LevelClassifier.stages``) is gone: ``stage`` is refused
    with the values that exist."""
    plugins = load_plugins(entry_points=False, warn=False)
    se = plugins.methods.resolve("se").obj
    assert se.parse_options("se", {"placement": "level"}) == {"placement": "level"}
    with pytest.raises(api.UsageError, match="block"):
        se.parse_options("se", {"placement": "stage"})


def test_listing_imports_no_plugin_code_and_no_torch() -> None:
    """The built-in plugins (and the example third-party one) are declared by reference: loading every plugin
    and listing what it registered imports neither torch nor a plugin's implementation module."""
    import subprocess
    import sys

    code = (
        "import sys; from harness.cli import main; main(['list', 'methods']); main(['list', 'archs']); "
        "heavy = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('plugins.methods.', "
        "'plugins.archs.', 'timm')) and not m.endswith('.builtin')); print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out and "label-smoothing" in out and "resnet101" in out


class LazyOnes:
    @staticmethod
    @hookimpl
    def bench_register_methods(register):
        register("lazy-good", f"{__name__}:GoodMethod", description="by reference")
        register("lazy-wrong", f"{__name__}:NotAMethod")
        register("lazy-missing", "no_such_package.module:Method")


def test_a_reference_is_checked_when_used() -> None:
    from harness.core.errors import PluginError

    plugins = load_plugins(entry_points=False, warn=False, extra=[("lazy", LazyOnes)])
    assert plugins.methods.resolve("lazy-good").obj is GoodMethod
    with pytest.raises(
        PluginError,
        match=f"^plugin 'lazy' registered method 'lazy-wrong' as '{__name__}:NotAMethod', "
        "not a subclass of harness.api.Method$",
    ):
        plugins.methods.resolve("lazy-wrong").obj  # noqa: B018
    with pytest.raises(
        PluginError,
        match="^plugin 'lazy' registered method 'lazy-missing' as "
        "'no_such_package.module:Method', which cannot be imported: "
        "ModuleNotFoundError",
    ):
        plugins.methods.resolve("lazy-missing").obj  # noqa: B018


def test_every_record_field_is_documented() -> None:
    from harness.results import records

    text = (ROOT / "docs" / "records.md").read_text()
    for schema in (
        records.Record,
        records.MethodEntry,
        records.DatasetEntry,
        records.EngineEntry,
        records.ProtocolEntry,
        records.TeacherEntry,
        records.StageEntry,
        records.Metrics,
    ):
        missing = [f for f in schema.__annotations__ if not f.startswith("_") and f"`{f}`" not in text]
        assert missing == [], f"{schema.__name__}: fields not in docs/records.md: {missing}"


def test_every_command_line_option_is_documented() -> None:
    import argparse

    from harness.cli import build_parser

    text = (ROOT / "docs" / "commands.md").read_text()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"bench {name} {opt}"
        for name, parser in sub.choices.items()
        for action in parser._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help" and f"`{opt}`" not in text
    ]
    assert missing == [], f"options missing from docs/commands.md: {missing}"


def test_the_run_option_tables_of_the_docs_are_the_specifications() -> None:
    """docs/commands.md's option tables of `bench run` and `bench reproduce` are generated from the run
    specification: a changed or added option changes them (regenerate: python -m harness.run.spec.markdown
    docs/commands.md)."""
    from harness.run.spec import markdown

    page = (ROOT / "docs" / "commands.md").read_text()
    assert sorted(m[2] for m in markdown.BLOCK.finditer(page)) == ["reproduce", "run"]
    assert markdown.regenerate(page) == page, "regenerate: python -m harness.run.spec.markdown docs/commands.md"
