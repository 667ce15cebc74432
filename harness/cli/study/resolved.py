"""The resolved copy of a study: every run written out with every value it runs with, and its digest.

After every run of a study is prepared (so its recipe, options and teacher are resolved), :func:`resolved`
writes each run as one ``[[runs]]`` table: the matrix expanded, the command line's options applied, the
recipe's values, every method option (defaults included), the teacher a method got by default, paths
absolute. A key without a value (no subset, no teacher) is left out: TOML has no null. Reading the copy back
gives the same runs, the same stage keys and the same digest.

The digest (:func:`digest`) is of what the study runs, its ``[study]`` and ``[[runs]]`` tables, computed by
:func:`harness.core.identity.config_key`; ``[execution]`` (where and how: output folder, cache, executor,
device) is written but not digested. The digest is presentation: records carry it, no key contains it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import harness
from harness.cli.study.load import Study, StudyRun, schema, tomllib
from harness.core.identity import config_key
from harness.core.io import atomic_write_text
from harness.core.recipes import FAST_DEFAULTS
from harness.run.prepare import PreparedRun
from harness.run.spec.kinds import PathValue
from harness.run.spec.options import RECIPE_OPTIONS


def plain(value: Any) -> Any:
    """A value TOML can hold (None: leave the key out)."""
    if isinstance(value, Path):
        return str(value.absolute())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def as_toml(name: str, value: Any) -> Any:
    """A key's (converted) value as TOML; a path absolute."""
    kind = schema()[name].kind
    return plain(value if isinstance(kind, PathValue) else kind.toml(value))


def recipe_values(prepared: PreparedRun) -> dict[str, Any]:
    """The recipe overrides' resolved values; a fast-track field (``FAST_DEFAULTS``) only where the run's recipe
    or the named one differs from its default, so that the copies of other studies are what they were."""
    recipe = asdict(prepared.recipe)
    named = prepared.plugins.recipes.resolve(prepared.request.recipe).obj
    return {
        name: plain(recipe[name])
        for name in RECIPE_OPTIONS
        if name not in FAST_DEFAULTS
        or FAST_DEFAULTS[name] != recipe[name]
        or FAST_DEFAULTS[name] != getattr(named, name)
    }


def run_table(run: StudyRun, prepared: PreparedRun) -> dict[str, Any]:
    table = {name: as_toml(name, value) for name, value in run.values.items() if name != "options"}
    table.update(recipe_values(prepared))
    table["amp"], table["channels_last"] = prepared.amp, prepared.channels_last
    if table.get("teacher") is None and prepared.teacher is not None and prepared.teacher.arch:
        table["teacher"] = prepared.teacher.arch  # the architecture's default teacher, named
    options = {m.name: plain(dict(m.opts)) for m in prepared.methods}
    table["options"] = {name: opts for name, opts in options.items() if opts}
    return {k: v for k, v in table.items() if v is not None and v != {}}


def resolved(study: Study, runs: list[tuple[StudyRun, PreparedRun]]) -> dict[str, Any]:
    """The resolved study as a TOML document (``runs``: each run with one of its prepared requests)."""
    execution = {name: as_toml(name, value) for name, value in study.execution.items()}
    if runs:
        execution["device"] = str(runs[0][1].device)
    seen: list[int] = []
    tables = []
    for run, prepared in runs:  # order=seeds gives a run once per seed: its table once
        if id(run) not in seen:
            seen.append(id(run))
            tables.append(run_table(run, prepared))
    return {
        "study": plain(study.meta),
        "execution": {k: v for k, v in execution.items() if v not in (None, {})},
        "runs": tables,
    }


def digest(document: dict[str, Any]) -> str:
    """What the study runs: its ``[study]`` and ``[[runs]]`` tables (not ``[execution]``)."""
    return config_key({"study": document["study"], "runs": document["runs"]})


ARRAY = re.compile(r"\[\n((?:[ ]+[^\[\]\n]+,\n)+)[ ]*\]")


def toml_text(document: dict[str, Any]) -> str:
    """``document`` as TOML (tomli-w), its arrays of scalars on one line; checked to read back the same."""
    import tomli_w

    text = tomli_w.dumps(document)
    short = ARRAY.sub(lambda m: "[" + ", ".join(line.strip().rstrip(",") for line in m[1].splitlines()) + "]", text)
    return short if tomllib.loads(short) == tomllib.loads(text) else text


def dumps(document: dict[str, Any], study: Study, key: str) -> str:
    header = (
        f"# The resolved copy of study '{study.name}' ({study.file}), digest {key}, written by "
        f"encodenet-bench {harness.__version__}:\n# every run with every value it ran with (defaults filled "
        f"in, command-line options applied). Run it again with: bench run THIS_FILE\n\n"
    )
    return header + toml_text(document)


def file_name(study: Study, key: str) -> str:
    from harness.results.records import slug

    return f"{slug(study.name)}-{key[:8]}.study.toml"


def record(study: Study, runs: list[tuple[StudyRun, PreparedRun]]) -> tuple[Path, list[tuple[StudyRun, PreparedRun]]]:
    """Write the resolved copy into the output folder. Returns the copy's path and the runs with it (and the
    digest) named in their requests, so that each record says which study it came from."""
    document = resolved(study, runs)
    key = digest(document)
    out = Path(study.execution["out"])
    path = out / file_name(study, key)
    atomic_write_text(path, dumps(document, study, key))
    entry = {"name": study.name, "file": study.file, "digest": key, "resolved": path.name}
    return path, [(run, replace(prepared, request=replace(prepared.request, study=entry))) for run, prepared in runs]
