"""The plugin system: built-ins, entry points, broken and conflicting plugins, disabling, unknown hooks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.api import Method

from harness import hookimpl
from harness.core.errors import PluginError, UsageError
from harness.plugins.manager import load_plugins


def fake_distribution(root: Path, dist: str, entry: str, module: str, source: str) -> None:
    """An installed-looking distribution with one ``bench`` entry point (what pip would leave behind)."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[bench]\n{entry} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_register_everything() -> None:
    plugins = load_plugins(entry_points=False, warn=False)
    assert "baseline" in plugins.methods
    assert {"resnet20", "vgg8", "resnet50", "timm:resnet18"} <= {
        n for n in ["resnet20", "vgg8", "resnet50", "timm:resnet18"] if n in plugins.archs
    }
    assert {"crd", "attention", "encodenet", "smoke"} <= {e.name for e in plugins.recipes.entries()}
    assert all(p.source == "builtin" for p in plugins.plugins)


def test_broken_third_party_plugin_is_one_line_and_rest_works(site: Path, capsys: pytest.CaptureFixture) -> None:
    fake_distribution(site, "bench-broken", "broken", "bench_broken_mod", "import does_not_exist_anywhere\n")
    plugins = load_plugins()
    err = capsys.readouterr().err.strip().splitlines()
    line = [text for text in err if "broken" in text]
    assert len(line) == 1
    assert "plugin 'broken' from package 'bench-broken'" in line[0] and "ModuleNotFoundError" in line[0]
    assert "baseline" in plugins.methods
    assert [p.name for p in plugins.failures] == ["broken"]


def test_plugin_failing_during_registration_is_skipped(site: Path, capsys: pytest.CaptureFixture) -> None:
    fake_distribution(
        site,
        "bench-half",
        "half",
        "bench_half_mod",
        """
        from harness.api import Method, hookimpl
        class Half(Method):
            pass
        @hookimpl
        def bench_register_methods(register):
            register("half-method", Half)
            raise RuntimeError("boom")
    """,
    )
    plugins = load_plugins()
    assert "half-method" not in plugins.methods
    assert (
        "plugin 'half' from package 'bench-half' failed in bench_register_methods: RuntimeError: boom"
        in capsys.readouterr().err
    )


def test_third_party_plugin_registers_through_entry_point(site: Path) -> None:
    fake_distribution(
        site,
        "bench-good",
        "good",
        "bench_good_mod",
        """
        from harness import hookimpl
        from harness.api import Method
        class Good(Method):
            pass
        @hookimpl
        def bench_register_methods(register):
            register("good-method", Good, description="ok")
    """,
    )
    plugins = load_plugins(warn=False)
    entry = plugins.methods.resolve("good-method").entry
    assert entry.plugin == "good"
    info = next(p for p in plugins.plugins if p.name == "good")
    assert info.source == "bench-good" and info.registered["methods"] == ["good-method"]


class AnotherBaseline(Method):
    """A rival's baseline."""


def test_duplicate_name_fails_only_where_it_is_used(capsys: pytest.CaptureFixture) -> None:
    class Dup:
        @staticmethod
        @hookimpl
        def bench_register_methods(register):
            register("baseline", AnotherBaseline)
            register("dup-only", AnotherBaseline)

    plugins = load_plugins(entry_points=False, extra=[("dup", Dup)])  # loading works
    assert capsys.readouterr().err.strip() == (
        "bench: warning: method 'baseline' is registered by both plugin 'baseline' and plugin 'dup'; disable one "
        "with BENCH_DISABLE_PLUGINS=dup (until then 'baseline' cannot be used)"
    )
    with pytest.raises(
        PluginError,
        match="^method 'baseline' is registered by both plugin 'baseline' and plugin "
        "'dup'; disable one with BENCH_DISABLE_PLUGINS=dup$",
    ):
        plugins.methods.resolve("baseline")
    assert plugins.methods.resolve("dup-only").entry.plugin == "dup" and "kd" in plugins.methods
    assert "baseline" in plugins.methods  # a known name, though unusable until one plugin is disabled
    status = {p.name: p.status for p in plugins.plugins}
    assert status["dup"] == "conflict: method 'baseline' also registered by plugin 'baseline'"
    assert status["baseline"] == "conflict: method 'baseline' also registered by plugin 'dup'"
    assert status["kd"] == "ok"


def test_unknown_hook_skips_the_plugin_not_the_harness(capsys: pytest.CaptureFixture) -> None:
    class Typo:
        @staticmethod
        @hookimpl
        def bench_register_methodz(register):
            pass

    plugins = load_plugins(entry_points=False, extra=[("typo", Typo)])
    (info,) = plugins.failures
    assert info.name == "typo" and info.error.startswith("implements an unknown hook 'bench_register_methodz'")
    assert "plugin 'typo'" in capsys.readouterr().err and "baseline" in plugins.methods


def test_builtin_with_unknown_hook_is_a_bug_that_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.plugins.manager as manager

    module = type(sys)("fake_builtin_typo")
    module.bench_register_methodz = hookimpl(lambda register: None)  # type: ignore[attr-defined]  # a hook added to a module object
    monkeypatch.setitem(sys.modules, "fake_builtin_typo", module)
    builtins = (*manager.builtin_plugins(), manager.Builtin("typo", module, "fake_builtin_typo"))
    monkeypatch.setattr(manager, "builtin_plugins", lambda: builtins)
    with pytest.raises(PluginError, match="plugin 'typo' implements an unknown hook 'bench_register_methodz'"):
        load_plugins(entry_points=False, warn=False)


def fake_builtins(root: Path) -> str:
    """A package laid out as ``plugins/`` is: folders whose ``builtin.py`` declares plugins (one named
    explicitly, one by its variable, a plain object that is no plugin), a folder without one, a module."""
    package = root / "fake_builtins"
    (package / "methods").mkdir(parents=True)
    (package / "notes").mkdir()
    for folder in (package, package / "methods", package / "notes"):
        (folder / "__init__.py").write_text("")
    (package / "loose.py").write_text("raise AssertionError('only builtin modules are imported')\n")
    (package / "notes" / "other.py").write_text("raise AssertionError('only builtin modules are imported')\n")
    (package / "methods" / "builtin.py").write_text(
        textwrap.dedent("""
        from harness.api import declared_plugin

        second = declared_plugin("methods", [("two", "fake_builtins.methods.impl:Two", "second")], name="second-one")
        first = declared_plugin("methods", [("one", "fake_builtins.methods.impl:One", "first")])
        NOT_A_PLUGIN = {"name": "x"}
    """)
    )
    return package.name


def test_builtin_plugins_are_discovered_from_their_declarations(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new built-in plugin is one declaration in ``<folder>/builtin.py``: no list elsewhere names it."""
    import harness.plugins.manager as manager

    monkeypatch.setattr(manager, "BUILTIN_PACKAGE", fake_builtins(site))
    manager.builtin_plugins.cache_clear()
    try:
        found = manager.builtin_plugins()
        plugins = load_plugins(entry_points=False, warn=False, disable=set())
    finally:
        manager.builtin_plugins.cache_clear()
    assert [(b.name, b.module) for b in found] == [
        ("second-one", "fake_builtins.methods.builtin:second"),
        ("first", "fake_builtins.methods.builtin:first"),
    ]
    assert [e.name for e in plugins.methods.entries()] == ["two", "one"]
    assert {p.name: p.source for p in plugins.plugins} == {"second-one": "builtin", "first": "builtin"}


def test_the_real_builtins_are_every_declaration_of_plugins_builtin_modules() -> None:
    """Each declared plugin of ``plugins/*/builtin.py`` is loaded under its name, once (plugin names such as
    ``baseline-matched`` are the methods' own)."""
    import importlib
    import pkgutil

    import plugins as package
    from harness.plugins.declared import DeclaredPlugin

    declared = []
    for folder in pkgutil.iter_modules(package.__path__):
        try:
            module = importlib.import_module(f"plugins.{folder.name}.builtin")
        except ModuleNotFoundError:
            continue
        declared += [p for p in vars(module).values() if isinstance(p, DeclaredPlugin)]
    loaded = {p.name for p in load_plugins(entry_points=False, warn=False, disable=set()).plugins}
    assert len(loaded) == len(declared) and {"baseline-matched", "filter-ft", "recipes", "kd", "cifar"} <= loaded
    methods = load_plugins(entry_points=False, warn=False, disable=set()).methods
    assert {"baseline-matched", "filter-ft"} <= {e.name for e in methods.entries()}


def test_disable_env_skips_named_plugins(site: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    fake_distribution(site, "bench-broken2", "broken2", "bench_broken2_mod", "raise ImportError('nope')\n")
    monkeypatch.setenv("BENCH_DISABLE_PLUGINS", "broken2, timm")
    plugins = load_plugins()
    assert "broken2" not in capsys.readouterr().err
    names = {p.name for p in plugins.plugins}
    assert "broken2" not in names and "timm" not in names
    with pytest.raises(UsageError, match="unknown architecture 'timm:resnet18'"):
        plugins.archs.resolve("timm:resnet18")


def test_bench_plugins_command_lists_registrations() -> None:
    out = subprocess.run([sys.executable, "-m", "harness", "plugins"], capture_output=True, text=True, check=True)
    assert "cifar_resnet" in out.stdout and "resnet20" in out.stdout and "baseline" in out.stdout
