"""Golden loss fixtures: values obtained by running a method's reference implementation outside this project.

Each fixture is ``tests/golden/<name>.json``. Its ``header`` says how it was made: the reference
``repository`` and ``commit``, the reference ``file`` whose code computed the values, and the ``script``
(under ``scripts/golden/``, outside the tests: it is run by hand, not by pytest) with the ``command`` that
regenerates the fixture from a checkout of that repository at that commit (``scripts/golden/README.md``).
``inputs`` are the fixed tensors fed to both implementations, ``params`` the method's settings, ``expected``
the reference's outputs: the loss and, where the method has learnable parts or the gradient matters, the
gradients (``grad.<input or parameter name>``). Tensors are stored as ``{"shape", "data"}`` (fp64 values
written from the reference's fp32 results), so a fixture is plain, diffable JSON.

A generation script imports :func:`dump` from here (``sys.path`` insert of ``tests/``) and the reference
code from the checkout given on its command line; it never imports the harness, so the values are the
reference's alone. Tests load a fixture with :func:`load` and compare with ``torch.testing.assert_close``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parents[1]  # the repository: a header's ``script`` is relative to it
SCRIPTS = ROOT / "scripts" / "golden"  # the generation scripts
HEADER_KEYS = ("repository", "commit", "file", "script", "command")


@dataclass
class Golden:
    """One loaded fixture: its header, input tensors, method settings and expected reference outputs."""

    header: dict[str, str]
    inputs: dict[str, torch.Tensor]
    params: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)


def _encode(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu", torch.float64)
        return {"shape": list(t.shape), "data": t.flatten().tolist()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"shape", "data"}:
        return torch.tensor(value["data"], dtype=torch.float64).reshape(value["shape"]).float()
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def dump(
    path: str | Path,
    header: dict[str, str],
    inputs: dict[str, Any],
    expected: dict[str, Any],
    params: dict[str, Any] | None = None,
) -> None:
    """Write a fixture (used by the generation scripts, which run the reference code outside the project)."""
    missing = [k for k in HEADER_KEYS if not header.get(k)]
    if missing:
        raise ValueError(f"golden fixture header lacks {', '.join(missing)}")
    doc = {"header": header, "params": params or {}, "inputs": _encode(inputs), "expected": _encode(expected)}
    body = ",\n".join(f" {json.dumps(key)}: {json.dumps(value)}" for key, value in doc.items())
    Path(path).write_text("{\n" + body + "\n}\n")


def load(name: str) -> Golden:
    """The fixture ``tests/golden/<name>.json``; fails loudly when its header does not say how it was made."""
    doc = json.loads((GOLDEN / f"{name}.json").read_text())
    header = doc["header"]
    missing = [k for k in HEADER_KEYS if not header.get(k)]
    assert not missing, f"golden fixture {name}.json: header lacks {', '.join(missing)}"
    script = ROOT / header["script"]
    assert script.parent == SCRIPTS and script.is_file(), f"{name}.json: script {header['script']} is not in {SCRIPTS}"
    return Golden(header, _decode(doc["inputs"]), doc.get("params", {}), _decode(doc["expected"]))
