"""The dry run (``--check-install WHEELDIR``) and the wheels a GPU machine lacks (``--list-wheels``).

A GPU machine has no network: its python3 has torch and most of our dependencies, the others travel as wheels
in a carried folder (``.whl``, filled by ``benchmarks/gpu_prepare.sh``) with the project's own wheel, and all
of them install there with ``pip install --no-deps --no-index``. The dry run checks that folder here, before
any GPU time is spent: the right wheels, one version each, for the GPU machine's Python; the same install
into a scratch folder; and, in a fresh interpreter that sees that folder first, that every dependency imports
at an allowed version (the carried ones from the folder), that the harness comes from the installed wheel, its
built-in methods load and ``bench`` is installed; and that the wheel holds this tree's modules. It trains nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
#: what a GPU machine's python3 already has (issue 29, the device notes), and what our dependencies there
#: come with (numpy, pillow: torchvision; filelock: torch; safetensors: timm)
DEVICE_HAS = (
    "torch",
    "torchvision",
    "timm",
    "scikit-learn",
    "pluggy",
    "rich",
    "tabulate",
    "matplotlib",
    "scipy",
    "numpy",
    "pillow",
    "filelock",
    "safetensors",
)
#: the GPU machine's Python (the device notes: Python 3.12 on x86-64 Linux)
DEVICE_PYTHON = "3.12"
DEVICE_TAGS = ("py3", "py312", "cp312")
IMPORT_NAMES = {"scikit-learn": "sklearn", "pillow": "PIL", "tomli-w": "tomli_w"}
PROJECT = "encodenet-bench"
WHEEL_NAME = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?"
    r"-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)


def canonical(name: str) -> str:
    """A distribution name as pip compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject() -> dict[str, Any]:
    """The [project] table of pyproject.toml."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]  # Python 3.10: tomllib's source

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pins() -> dict[str, str]:
    """constraints.txt's pinned versions, by canonical name."""
    found = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            found[canonical(name)] = version.strip()
    return found


def carried_wheels() -> list[str]:
    """The dependencies a GPU machine's python3 lacks, pinned as constraints.txt pins them (markers evaluated
    for its Python)."""
    from packaging.requirements import Requirement

    pinned, has = pins(), {canonical(n) for n in DEVICE_HAS}
    wanted = []
    for req in map(Requirement, pyproject()["dependencies"]):
        name = canonical(req.name)
        if name in has or (req.marker and not req.marker.evaluate({"python_version": DEVICE_PYTHON})):
            continue
        wanted.append(f"{req.name}=={pinned[name]}" if name in pinned else str(req))
    return wanted


def wheel_lines(wheeldir: Path, version: str) -> tuple[list[str], int]:
    """The folder's wheels against what a GPU machine needs: each carried dependency and the project once,
    at the pinned version, installable on the GPU machine's Python (x86-64 Linux). Lines, problems."""
    lines, problems = [], 0
    found: dict[str, list[tuple[str, str, Path]]] = {}
    for path in sorted(wheeldir.glob("*.whl")):
        m = WHEEL_NAME.match(path.name)
        if m is None:
            lines.append(f"PROBLEM: {path.name} is not a wheel's name")
            problems += 1
            continue
        found.setdefault(canonical(m["name"]), []).append((m["version"], f"{m['py']}-{m['abi']}-{m['plat']}", path))
    wanted = {canonical(w.split("==")[0]): w.split("==")[1] if "==" in w else None for w in carried_wheels()}
    wanted[canonical(PROJECT)] = version
    for name, pin in wanted.items():
        have = found.pop(name, [])
        if len(have) != 1:
            problems += 1
            lines.append(
                f"PROBLEM: {name}: {len(have)} wheels in {wheeldir} (need exactly one"
                f"{f', version {pin}' if pin else ''}): run benchmarks/gpu_prepare.sh"
            )
            continue
        got, tags, path = have[0]
        py, abi, plat = tags.split("-")
        fits = any(t in DEVICE_TAGS for t in py.split(".")) and (plat == "any" or "x86_64" in plat and "linux" in plat)
        if pin and got != pin:
            problems += 1
            lines.append(
                f"PROBLEM: {path.name}: version {got}, need {pin}"
                + (
                    " (the project's wheel is older than this tree: run benchmarks/gpu_prepare.sh)"
                    if name == canonical(PROJECT)
                    else ""
                )
            )
        elif not fits:
            problems += 1
            lines.append(f"PROBLEM: {path.name}: tags {tags} do not install on Python {DEVICE_PYTHON}, x86-64 Linux")
        else:
            lines.append(f"ok       wheel {path.name}")
    for have in found.values():
        lines.append(f"note     {', '.join(p.name for _, _, p in have)}: not needed by the project (it installs too)")
    return lines, problems


def install_lines(wheeldir: Path, target: Path) -> tuple[list[str], int]:
    """``pip install --no-deps --no-index`` of every wheel into ``target``, as on the GPU machine."""
    wheels = [str(p) for p in sorted(wheeldir.glob("*.whl"))]
    if not wheels:
        return ["PROBLEM: no wheels to install"], 1
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--no-deps",
        "--no-compile",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--target",
        str(target),
        *wheels,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        first = next((ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()), f"exit {done.returncode}")
        return [f"PROBLEM: pip install --no-deps --no-index failed: {first.strip()}"], 1
    return [f"ok       pip install --no-deps --no-index of {len(wheels)} wheel(s) into a scratch folder"], 0


def installed_lines(target: Path, version: str) -> tuple[list[str], int]:
    """In a fresh interpreter that sees ``target`` first (as PYTHONPATH does on the GPU machine, and not this
    tree): every dependency, the harness and ``bench``; imports only, nothing runs. Then whether the installed
    project is this tree (a stale wheel is a problem)."""
    carried = [canonical(w.split("==")[0]) for w in carried_wheels()]
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r}); "
        f"from gpucheck.install import probe_installed; probe_installed({str(target)!r}, {carried!r})"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}  # cwd: the scratch folder, not this tree
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=target, env=env)
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        first = next((ln for ln in done.stderr.splitlines() if ln.strip()), f"exit {done.returncode}")
        return [f"PROBLEM: the installed harness cannot be imported: {first.strip()}"], 1
    lines, problems = list(found["lines"]), found["problems"]
    if found.get("version") != version:
        problems += 1
        lines.append(f"PROBLEM: the installed harness is {found.get('version')}, this tree {version}")
    differ = stale_files(target)
    problems += bool(differ)
    lines.append(
        f"PROBLEM: the project's wheel is not this tree ({len(differ)} files differ, e.g. {differ[0]}): "
        f"run benchmarks/gpu_prepare.sh"
        if differ
        else f"ok       the project's wheel is this tree ({found.get('methods')} built-in methods)"
    )
    return lines, problems


def stale_files(target: Path) -> list[str]:
    """The project's modules that differ between an install in ``target`` and this tree, or are in one only."""
    differ = []
    for top in ("harness", "plugins"):
        tree = {p.relative_to(REPO) for p in (REPO / top).rglob("*.py")}
        installed = {p.relative_to(target) for p in (target / top).rglob("*.py")}
        differ += sorted(str(p) for p in tree ^ installed)
        differ += sorted(str(p) for p in tree & installed if (REPO / p).read_bytes() != (target / p).read_bytes())
    return differ


def probe_installed(target: str, carried: list[str]) -> None:
    """In the fresh interpreter: one JSON line of what imports, from where, at which version."""
    import importlib
    import importlib.metadata

    from packaging.requirements import Requirement

    lines, problems = [], 0
    for text in pyproject()["dependencies"]:
        req = Requirement(text)
        if req.marker and not req.marker.evaluate():
            continue
        name = canonical(req.name)
        try:
            version = importlib.metadata.version(req.name)
            module = importlib.import_module(IMPORT_NAMES.get(name, name.replace("-", "_")))
            where = str(Path(module.__file__ or "?").parent)
        except Exception as exc:  # noqa: BLE001 - recorded
            problems += 1
            lines.append(f"PROBLEM: {req.name} does not import: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        bad = (req.specifier and not req.specifier.contains(version, prereleases=True)) or (
            name in carried and not where.startswith(target)
        )
        problems += bool(bad)
        lines.append(
            f"{'PROBLEM:' if bad else 'ok      '} {req.name} {version} from {where}"
            + (" (a carried dependency not from the wheels)" if name in carried and bad else "")
        )
    import harness

    from gpucheck.probes import builtin_methods

    entry = [ep for ep in importlib.metadata.entry_points(group="console_scripts") if ep.name == "bench"]
    inside = str(Path(harness.__file__).resolve()).startswith(target)
    problems += (not inside) + (not entry)
    lines.append(
        f"{'ok      ' if inside else 'PROBLEM:'} harness {harness.__version__} from {Path(harness.__file__).parent}"
    )
    lines.append(
        f"{'ok      ' if entry else 'PROBLEM:'} the bench command: "
        + (entry[0].value if entry else "no console script 'bench' installed")
    )
    methods = len(builtin_methods())
    print(json.dumps({"lines": lines, "problems": problems, "version": harness.__version__, "methods": methods}))


def host_lines(data: tuple[Path | None, str], sha256: str) -> list[str]:
    """Notes on the host: CUDA, a C compiler, part f's data (a wrong tarball is a problem; none, a note)."""
    lines = []
    try:
        import torch

        lines.append(
            f"ok       CUDA: {torch.cuda.device_count()} GPU(s), {torch.cuda.get_device_name(0)}"
            if torch.cuda.is_available()
            else f"note     CUDA: not available here (torch {torch.__version__}): only --device cpu runs"
        )
    except Exception as exc:  # noqa: BLE001
        lines.append(f"PROBLEM: torch: {type(exc).__name__}: {exc}")
    compiler = shutil.which("cc") or shutil.which("gcc")
    lines.append(
        f"ok       C compiler {compiler} (torch.compile)"
        if compiler
        else "note     no C compiler (cc, gcc): part c's compile rows will fail (torch.compile needs one)"
    )
    path, where = data
    if path is None:
        lines.append(f"note     part f will be skipped: {where}")
    else:
        from harness.train.bundles import sha256_file

        digest = sha256_file(path)
        lines.append(
            f"ok       part f will train on {where}"
            if digest == sha256
            else f"PROBLEM: {where}: sha256 {digest[:16]}..., expected {sha256[:16]}... (not the JPEG CIFAR-10)"
        )
    return lines


def check_install(wheeldir: Path, data: tuple[Path | None, str], sha256: str) -> tuple[str, bool]:
    """The dry run's report and whether a GPU machine is ready for the check."""
    import harness

    version = harness.__version__
    lines = [
        f"python {sys.version.split()[0]} ({sys.executable}); harness {version} in {REPO}",
        f"carried wheels: {', '.join(carried_wheels())} and {PROJECT}",
    ]
    found, problems = wheel_lines(wheeldir, version)
    lines += found
    with tempfile.TemporaryDirectory(prefix="gpu-check-install-") as scratch:
        target = Path(scratch).resolve()
        found, bad = install_lines(wheeldir, target)
        lines, problems = lines + found, problems + bad
        if not bad:
            found, bad = installed_lines(target, version)
            lines, problems = lines + found, problems + bad
    host = host_lines(data, sha256)
    problems += sum(line.startswith("PROBLEM") for line in host)
    lines += host
    lines.append("READY: nothing was trained" if not problems else f"NOT READY: {problems} problem(s) above")
    return "\n".join(lines), not problems
