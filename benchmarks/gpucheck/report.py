"""The check's outputs: results.json (everything), summary.md (tables per part), log.txt (every child's output)."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gpucheck.check import Check, PartResult
from gpucheck.plan import PARTS

#: each part's table columns in summary.md
COLUMNS = {
    "gate": ["status", "seconds", "exact", "passed", "exit_code", "mode", "summary", "first_fail", "error"],
    "methods": ["method", "arch", "teacher", "options", "status", "exit_code", "seconds", "top1", "stages", "error"],
    "engine": [
        "arch",
        "batch",
        "setting",
        "status",
        "engine_img_s",
        "bare_img_s",
        "ratio",
        "engine_warmup_s",
        "bare_warmup_s",
        "error",
    ],
    "concurrent": ["K", "status", "aggregate_img_s", "vs_K1", "seconds", "error"],
    "determinism": ["settings", "status", "weights_equal", "curves_equal", "digests", "nondeterministic_ops", "error"],
    "cifar10": ["run", "epochs", "status", "top1", "seconds", "wall_s", "error"],
}


def results_document(check: Check, wall: float) -> dict[str, Any]:
    """results.json: the command, device, scale and every part's rows."""
    return {
        "tool": "benchmarks/gpu_check.py",
        "started": check.started,
        "command": sys.argv,
        "device": check.device,
        "scale": asdict(check.scale),
        "wall_s": round(wall, 1),
        "parts": {name: {k: v for k, v in asdict(p).items() if k != "deadline"} for name, p in check.parts.items()},
    }


def cell(value: Any) -> str:
    """A table cell: '-' for nothing, numbers rounded, no '|' or line breaks."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value).replace("|", "/").replace("\n", " ")


def table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """A markdown table of ``columns`` of ``rows``, and a blank line."""
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return lines + [""]


def shown_rows(name: str, part: PartResult) -> list[dict[str, Any]]:
    """A part's rows as its table shows them (part b: each stage's origin in one cell)."""
    if name != "methods":
        return part.rows
    return [
        {**r, "stages": ", ".join(f"{k}: {v['origin']}" for k, v in (r.get("stages") or {}).items())} for r in part.rows
    ]


def summary_markdown(check: Check, wall: float) -> str:
    """summary.md: one line per part, then each part's note and table."""
    env = check.parts["environment"].info if "environment" in check.parts else {}
    where = env.get("GPU") or env.get("host CPU") or check.device
    lines = [
        f"# GPU check on {where} ({check.device}, {check.scale.name} scale)",
        "",
        f"`{' '.join(sys.argv)}`, started {check.started}, {wall:.0f} s in all (budget "
        f"{check.deadline - check.t0:.0f} s). Every number below was measured in this run.",
        "",
    ]
    lines += table(
        [
            {
                "part": f"{PARTS[n]}. {n}",
                "status": p.status,
                "seconds": p.seconds,
                "budget": p.budget_s,
                "first error line": p.error or (p.note if p.status in ("skipped", "not run") else None),
            }
            for n, p in check.parts.items()
        ],
        ["part", "status", "seconds", "budget", "first error line"],
    )
    for name, part in check.parts.items():
        lines += [f"## {PARTS[name]}. {name}: {part.status}", ""]
        if part.note:
            lines += [part.note, ""]
        if name == "environment":
            lines += table([{"what": k, "value": v} for k, v in part.info.items()], ["what", "value"])
        elif part.rows:
            lines += table(shown_rows(name, part), COLUMNS[name])
        if name == "cifar10":
            lines += [f"- {k}: {v}" for k, v in part.info.items()] + [""]
    return "\n".join(lines)


def write_outputs(check: Check, out: Path) -> None:
    """summary.md, results.json and log.txt under ``out``, each written whole (a check killed between two
    parts leaves the parts it finished)."""
    wall = time.perf_counter() - check.t0
    files = {
        "results.json": json.dumps(results_document(check, wall), indent=1, default=str),
        "summary.md": summary_markdown(check, wall),
        "log.txt": check.runner.combined_log(),
    }
    for name, text in files.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)
