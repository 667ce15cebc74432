"""Identity: the one place where the harness hashes what decides whether a cached result may be reused.

Build systems that never serve a stale artifact derive a step's key from everything it consumed. Here:

* :func:`config_key` hashes a JSON-able description (a stage's config, its run settings, its inputs' digests);
* :func:`weights_digest` hashes weights (the output of a trained stage, a loaded checkpoint): the one digest
  function for all weights, so the same weights always give the same digest;
* :func:`state_digest` hashes a checkpoint (verified before a stage resumes from it);
* :func:`tensor_fingerprint` hashes decoded data (the pixels and labels a run trains and tests on);
* :func:`source_identity` names what a dataset reader reads (its files or folders, listed with sizes and
  modification times): with the reader's :func:`source_digest` it names a decoded-data cache, so two sources
  never share one;
* :func:`code_identity` names the code that computed a result: the normalised source (:func:`normalised_source`)
  of every module that computes and is reachable from the given objects (functions, classes, bound methods,
  ``nn.Module`` trees), and the versions of the numerical stack whose source is not hashed. A method whose code
  was changed gets a new identity, hence a retrain; an edited comment, docstring or layout does not. A module
  that imports a package only inside the functions that use it (so that planning does not pay for importing
  it) names the package in a module-level tuple :data:`IMPORTED_WHEN_USED`; its version enters the identity
  as if the module imported it at the top, and nothing is imported to read it.

Which harness modules compute is decided here, explicitly (:data:`COMPUTES`): the engine, the data pipeline,
model and method code and the kits. Presentation (progress, tables, plots, the CLI), orchestration and I/O
that does not change numbers (:data:`PRESENTS`) never enter a key, so a cosmetic change or a CLI upgrade
never retrains; a changed data reader still changes every key through the fingerprint of the decoded
tensors (:func:`tensor_fingerprint`), and its decode cache through :func:`code_digest`. Code outside the
harness (plugins, built-in or third-party) is always hashed. Every harness module is in exactly one of the
two sets (``tests/test_identity.py`` checks it), so a new module is a decision, not an accident.

Nothing else in the harness composes keys by hand.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import inspect
import json
import marshal
import os
import sys
import sysconfig
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

KEY_LENGTH = 20

#: Packages whose version stands for their code (their source is large and does not change in place).
STACK = (
    "torch",
    "torchvision",
    "timm",
    "numpy",
    "scipy",
    "sklearn",
    "PIL",
    "kneed",
    "matplotlib",
    "pluggy",
    "rich",
    "tabulate",
)

#: The name of a module-level tuple of packages (top-level import names) that the module imports only inside
#: the functions using them: :func:`code_identity` records their versions (read from the installed
#: distributions' metadata, without importing them) as it does for a package imported at the top.
IMPORTED_WHEN_USED = "IMPORTED_WHEN_USED"

_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()

#: Harness modules whose code decides what a stage produces: their source enters every key that reaches them.
COMPUTES = frozenset(
    {
        "harness.core.recipes",  # the schedule (lr factors) and budgets
        "harness.data.pipeline",
        "harness.data.distortions",  # batches, augmentation, normalisation, distortions
        "harness.models.levels",
        "harness.models.exits",
        "harness.models.arch_options",  # model interfaces
        "harness.models.whitening",
        "harness.train.averaging",  # the fast track's whitening and weight averaging
        "harness.train.engine",
        "harness.train.objective",
        "harness.train.evaluation",
        "harness.train.env",
        "harness.train.stage",
        "harness.train.executor",
        "harness.train.distributed",  # training and selection
        "harness.train.step",
        "harness.train.checkpoints",
        "harness.train.divergence",  # the engine's parts
        "harness.methods.contract",
        "harness.methods.shared",  # the method contract, the shared stages
        "harness.methods.compose",  # composed methods (kd+se)
        "harness.methods.naming",  # how a composed name splits into its components
        "harness.kits.attention",
        "harness.kits.distill",
        "harness.kits.transform",  # the plugin kits
    }
)
#: Harness modules that present, orchestrate or do I/O without changing what a stage produces. Facades
#: (``harness``, ``harness.api``, package ``__init__`` s) re-export: reached as a module object, a facade stands
#: for every module of COMPUTES (a plugin's ``import harness.api as api``).
PRESENTS = frozenset(
    {
        "harness",
        "harness.__main__",
        "harness.api",
        "harness.core",
        "harness.core.constraints",
        "harness.core.errors",
        "harness.core.environ",
        "harness.core.extras",
        "harness.core.numerics",
        "harness.core.identity",
        "harness.core.io",
        "harness.core.progress",
        "harness.data",
        "harness.data.datasets",
        "harness.data.reads",
        "harness.data.trees",
        "harness.data.validate",
        "harness.kits",
        "harness.methods",
        "harness.models",
        "harness.models.arch_limits",
        "harness.models.cost",
        "harness.models.staged",
        "harness.train",
        "harness.train.artifacts",
        "harness.testing",
        "harness.studies",
        "harness.train.bundles",
        "harness.train.inventory",
        "harness.train.sources",  # sharing stages, tidying the cache
    }
)
#: Packages whose every module presents or orchestrates (the CLI, the run layer, results, the plugin host).
PRESENTING_PACKAGES = ("harness.cli", "harness.run", "harness.results", "harness.plugins")
FACADES = frozenset({"harness", "harness.api", "harness.kits", "harness.methods", "harness.models.staged"})


def config_key(config: Any) -> str:
    """A stable key for a JSON-able value (dict keys sorted; non-JSON values by their ``str``)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_LENGTH]


def weights_digest(state: dict[str, Any]) -> str:
    """A content hash of a state dict: names, dtypes, shapes and bytes of every tensor, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        h.update(name.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()[:KEY_LENGTH]


def state_digest(value: Any) -> str:
    """A content hash of nested dicts, lists and tuples of tensors and plain values (a checkpoint: weights,
    optimiser state, history, RNG states), cheap enough to compute at every epoch's checkpoint (blake2b)."""
    h = hashlib.blake2b(digest_size=16)
    _feed(h, value)
    return h.hexdigest()[:KEY_LENGTH]


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(b"{")
        for key in sorted(value, key=repr):
            h.update(repr(key).encode())
            _feed(h, value[key])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for item in value:
            _feed(h, item)
        h.update(b"]")
    else:
        h.update(repr(value).encode())


def tensor_fingerprint(*tensors: torch.Tensor | None) -> str:
    """A content hash of tensors (shapes and bytes), e.g. a dataset's images and labels."""
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:KEY_LENGTH]


def source_identity(*sources: Path | str) -> str:
    """What a reader of ``sources`` (files, folders, archives) reads, as one key: each source's absolute path
    and, for a file, its size and modification time; for a folder, every file below it (links to folders
    followed, once per real folder) by its path inside the folder, with its size and modification time, and
    every entry that cannot be read (a dangling link, a link loop) by name. Two places never share a key; a file
    added, removed, renamed, edited or touched changes it. Contents are not read (as ``make`` does): a file
    rewritten with its size and time kept is not noticed."""
    h = hashlib.sha256()
    for source in sources:
        path = Path(source).expanduser().resolve()
        h.update(f"\0{path}".encode())
        for rel, state in _listing(path):
            h.update(f"|{rel}|{state}".encode())
    return h.hexdigest()[:KEY_LENGTH]


def _file_state(path: str) -> str:
    try:
        stat = os.stat(path)
    except OSError as exc:
        return f"unreadable:{exc.strerror}"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _listing(path: Path) -> list[tuple[str, str]]:
    """``(path inside the source, state)`` of a file source (``""``) or of every entry below a folder."""
    if not path.is_dir():
        return [("", _file_state(str(path)))]
    entries: list[tuple[str, str]] = []
    seen: set[str] = set()

    def rel(full: str) -> str:
        return Path(os.path.relpath(full, path)).as_posix()

    def unreadable(exc: OSError) -> None:
        entries.append((rel(exc.filename or str(path)) + "/", f"unreadable:{exc.strerror}"))

    for root, dirs, names in os.walk(path, followlinks=True, onerror=unreadable):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            entries.append((rel(root) + "/", "link loop"))
            continue
        seen.add(real)
        entries.extend((rel(os.path.join(root, name)), _file_state(os.path.join(root, name))) for name in names)
    return sorted(entries)


# ---- code identity -------------------------------------------------------------------------------------


def _top(module_name: str) -> str:
    return module_name.split(".")[0]


def _is_stdlib(module: types.ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    if file is None:
        return True  # builtin
    path = Path(file).resolve()
    return _STDLIB in path.parents and "site-packages" not in path.parts and "dist-packages" not in path.parts


@functools.lru_cache(maxsize=None)
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.lru_cache(maxsize=None)
def _version_of(top: str) -> str:
    dists = _distributions().get(top) or []
    for dist in dists:
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    module = sys.modules.get(top)
    return f"{top}=={getattr(module, '__version__', 'unknown')}"


def _source_digest(file: str) -> str:
    stat = Path(file).stat()
    return _digest_file_version(file, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=None)
def _digest_file_version(file: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(normalised_source(Path(file).read_bytes())).hexdigest()[:KEY_LENGTH]


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def normalised_source(source: bytes) -> bytes:
    """What a module's source executes, as bytes that comments, docstrings and formatting do not change.

    The source is parsed (:mod:`ast`); the docstring of the module and of every class and function (a string
    constant as the *first* statement of its body; a body left empty gets ``pass``, which runs the same) is
    removed; the tree is written out field by field, without positions. Every other statement, string
    constants included, stays: a changed constant, name, operator or statement changes the bytes.

    Deviations: a docstring read at run time (``__doc__``) is not hashed (no computing code here reads one);
    the fields that are None or empty are left out, so that a Python version adding a field with an empty
    default (``type_params`` in 3.12) does not change every key. A file that does not parse is hashed as it is.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    for node in ast.walk(tree):
        if isinstance(node, _DOCUMENTED) and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]
    return _canonical_ast(tree).encode()


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _canonical_ast(node: Any) -> str:
    """A node as text: its type and its non-empty fields in declared order; constants by type and ``repr``."""
    if isinstance(node, ast.AST):
        fields = [(name, getattr(node, name, None)) for name in node._fields]
        inner = ",".join(f"{name}={_canonical_ast(value)}" for name, value in fields if not _empty(value))
        return f"{type(node).__name__}({inner})"
    if isinstance(node, list):
        return "[" + ",".join(_canonical_ast(item) for item in node) + "]"
    return f"{type(node).__name__}:{node!r}"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, list) and not value)


def _modules_of(obj: Any) -> Iterable[str]:
    """Names of the modules that define ``obj`` (a function, class, bound method, partial or nn.Module)."""
    if isinstance(obj, functools.partial):
        yield from _modules_of(obj.func)
        return
    if inspect.ismethod(obj):
        yield from _modules_of(type(obj.__self__))
        yield from _modules_of(obj.__func__)
        return
    if isinstance(obj, torch.nn.Module):
        for sub in obj.modules():
            yield from _modules_of(type(sub))
        return
    if inspect.isclass(obj):
        for cls in obj.__mro__:
            if cls.__module__:
                yield cls.__module__
        return
    name = getattr(obj, "__module__", None)
    if name:
        yield name


def _imports_of(module: types.ModuleType) -> Iterable[str]:
    """Modules a module's global names come from (imported modules, functions and classes)."""
    for value in vars(module).values():
        if isinstance(value, types.ModuleType):
            yield value.__name__
        elif inspect.isclass(value) or inspect.isfunction(value):
            name = getattr(value, "__module__", None)
            if name:
                yield name


def harness_role(name: str) -> str | None:
    """``compute`` or ``present`` for a module of the harness package, None for any other module; a KeyError
    for a harness module neither set names (a new module must be placed in one)."""
    if name != "harness" and not name.startswith("harness."):
        return None
    if name in COMPUTES:
        return "compute"
    if name in PRESENTS or any(name == p or name.startswith(p + ".") for p in PRESENTING_PACKAGES):
        return "present"
    raise KeyError(
        f"harness module {name} is in neither COMPUTES nor PRESENTS of harness.core.identity: "
        f"decide whether its code changes what a stage produces"
    )


def code_identity(*objects: Any) -> dict[str, str]:
    """What code ``objects`` run: ``{module: source digest}`` for every computing module reachable from them
    through their definitions and their modules' imports, and ``{package: "dist==version"}`` for the
    numerical stack and for the distribution each hashed top-level package belongs to, or a hashed module names
    in :data:`IMPORTED_WHEN_USED` (a package it imports later, in the functions that use it: its version only,
    as for the stack). Standard-library modules and the harness's presentation modules (:data:`PRESENTS`) are
    left out, and not followed.
    """
    seen: set[str] = set()
    todo = [name for obj in objects for name in _modules_of(obj)]
    out: dict[str, str] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        top = _top(name)
        module = sys.modules.get(name)
        if top in STACK:
            out[top] = _version_of(top)
            continue
        if module is None or _is_stdlib(module) or top in ("builtins", "__main__"):
            continue
        role = harness_role(name)
        if role == "present":
            if name in FACADES:
                todo.extend(COMPUTES)
            continue
        file = getattr(module, "__file__", None)
        if file and file.endswith(".py"):
            out[name] = _source_digest(file)
        if top not in out:
            out[f"dist:{top}"] = _version_of(top)
        todo.extend(_imports_of(module))
        for package in getattr(module, IMPORTED_WHEN_USED, ()):
            used = _top(package)
            out[used if used in STACK else f"dist:{used}"] = _version_of(used)
    return dict(sorted(out.items()))


def code_digest(*objects: Any) -> str:
    """One short digest of :func:`code_identity` (e.g. of a data reader, for its decode cache's file name)."""
    return config_key(code_identity(*objects))


def source_digest(*modules: types.ModuleType | None) -> str:
    """One short digest of the source files of ``modules`` themselves (not what they import): for caches of
    what a module's code reads or decodes (a dataset loader's decoded tensors), which this code decides.

    The same modules give the same digest in any order or repetition (they are sorted by name): a caller may
    pass a set, whose order of module objects differs from process to process."""
    files = {m.__name__: file for m in modules if m is not None and (file := getattr(m, "__file__", None))}
    parts = [f"{name}={_source_digest(files[name])}" for name in sorted(files)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def data_cache_key(build: Any, readers: Iterable[types.ModuleType], sources: Iterable[Path | str]) -> str:
    """The key of a decoded-data cache (:func:`harness.api.cached`): the code that reads and decodes (the module
    defining ``build`` and ``readers``, :func:`source_digest`; ``build``'s own code when no module file defines
    it, as in an interactive session) and what it reads (:func:`source_identity`)."""
    module = sys.modules.get(getattr(build, "__module__", None) or "")
    code = [source_digest(module, *readers)]
    if getattr(module, "__file__", None) is None:
        own = getattr(build, "__code__", None)
        code.append(hashlib.sha256(marshal.dumps(own)).hexdigest() if own is not None else type(build).__qualname__)
    return config_key([*code, source_identity(*sources)])[:16]
