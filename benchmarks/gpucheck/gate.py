"""Part g: the CI gate, pinned (``--numerics portable``), on the GPU machine's host CPU (issue 34).

The host is another CPU model than this project's, maybe another vendor: whether the gate is exact there
(the mode line) and passes says whether the profile replays the bundled reference across CPUs. It runs in
a fresh process (the pins must precede torch's first kernel), on one core, beside nothing else."""

from __future__ import annotations

from gpucheck import probes
from gpucheck.check import Check, PartResult


def part_gate(check: Check, part: PartResult) -> None:
    """g. ``.ci/gate`` on the host CPU: exact or not, and the result."""
    if not check.scale.gate:
        part.note = (
            f"{check.scale.name}: not run (the gate's budget is fixed: 2,000 images, 2-4 minutes of one "
            f"core); run .ci/gate itself"
        )
        part.rows.append({"status": "skipped", "error": None})
        return
    o = check.run(
        part, "gate", probes.pinned_gate, {"out": str(check.work / "gate"), "cache": str(check.work / "gate-cache")}
    )
    value = o.value or {}
    mode = value.get("mode") or ""
    part.rows.append(
        {
            "status": o.status,
            "seconds": o.seconds,
            "error": o.error,
            "exact": mode.endswith("exact mode"),
            "passed": value.get("exit_code") == 0,
            **value,
        }
    )
