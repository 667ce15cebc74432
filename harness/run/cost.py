"""What each method's deployed model costs, without training: parameters, MACs (and FLOPs), latency.

Every method's plan is walked as a dry run (nothing trained or loaded) on an untrained network of the
given class count and input shape, and its deployed stage's model is measured, so the parameter and FLOP columns of a
paper's table can be reproduced in seconds (``bench cost``; ``bench reproduce TABLE --no-train``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from harness.core.errors import BenchError, PluginFailed, UsageError, one_line
from harness.core.progress import Reporter
from harness.core.recipes import Recipe
from harness.data.datasets import ImageDataset
from harness.methods.contract import Method, RunInfo
from harness.methods.shared import baseline_stage
from harness.models.cost import counted_pass, latency_ms, shape_pass
from harness.models.levels import count_params
from harness.plugins.manager import PluginSet
from harness.results.reference import RefValue
from harness.run.outputs import check_logits, made
from harness.run.plan import RunPlan
from harness.train.artifacts import ArtifactStore
from harness.train.env import RunEnv
from harness.train.executor import StageRunner


def shape_only_dataset(num_classes: int, in_chans: int = 3, size: int = 32) -> ImageDataset:
    """A dataset with no images: just what building a model needs (classes, channels, size)."""
    empty = torch.zeros(0, in_chans, size, size, dtype=torch.uint8)
    labels = torch.zeros(0, dtype=torch.int64)
    return ImageDataset(
        name=f"shape-{num_classes}x{in_chans}x{size}",
        train_images=empty,
        train_labels=labels,
        test_images=empty,
        test_labels=labels,
        classes=[str(i) for i in range(num_classes)],
        mean=(0.5,) * in_chans,
        std=(0.25,) * in_chans,
        source="shape only (no images)",
    )


def declared_stand_in(plugins: PluginSet, dataset: str, val_split: float = 0.0) -> ImageDataset | None:
    """A shape-only stand-in of ``dataset`` from its plugin's declaration (class count, channels, size; no
    images), with an (empty) validation split when the run asks for one; None when nothing is declared."""
    meta = plugins.datasets.resolve(dataset).entry.meta
    if not all(isinstance(meta.get(k), int) for k in ("classes", "in_chans", "input_size")):
        return None
    stand_in = shape_only_dataset(meta["classes"], meta["in_chans"], meta["input_size"])
    if val_split:
        stand_in.val_images, stand_in.val_labels = stand_in.test_images, stand_in.test_labels
    return stand_in


MACS_COLUMN = "MACs (M)"
COST_NOTE = (
    "MACs: one per multiply-add of convolutions and matrix products, plus one per element of the "
    "attention gates' element-wise multiplications and sigmoids (what papers quote as FLOPs). "
    "FLOPs: torch.utils.flop_counter (a multiply-add = 2 FLOPs; element-wise operations not counted)."
)


@dataclass
class CostRow:
    method: str
    params: int
    macs: int
    flops: int
    latency_b1_ms: float | None
    reference_params_m: float | None = None


CPU = torch.device("cpu")


def measure_costs(
    plugins: PluginSet,
    methods: list[Method],
    arch: str,
    num_classes: int,
    *,
    in_chans: int = 3,
    size: int = 32,
    device: torch.device = CPU,
    latency: bool = False,
    teacher: str | None = None,
) -> list[CostRow]:
    """Each method's deployed model (seed 0's plan, resolved dry on untrained networks), measured."""
    recipe = Recipe("none", 1, 2, 0.1, 0.0)
    env = RunEnv(
        arch=arch,
        dataset=shape_only_dataset(num_classes, in_chans, size),
        recipe=recipe,
        seed=0,
        device=device,
        reporter=Reporter(),
        resolve_arch=plugins.resolve_arch,
    )
    stages = StageRunner(env, ArtifactStore(Path("/nonexistent")), dry=True)
    info = RunInfo(arch=arch, recipe=recipe, teacher_stage=baseline_stage(teacher) if teacher else None)
    rows = []
    shape = (in_chans, size, size)
    for entry in RunPlan.build(
        methods, [0], lambda seed: info, plugin_of=lambda name: plugins.methods.resolve(name).entry.plugin
    ):
        where = (
            f"method '{entry.name}' cannot be measured on {arch} ({num_classes} classes, "
            f"{in_chans}x{size}x{size} input)"
        )
        try:
            model = stages.resolve(entry.plan.deploy, entry.name).model.eval()
            # one pass checks the logits and counts: on the meta device, else a real one
            done = shape_pass(model, shape) or counted_pass(model, shape, device)
            check_logits(model, shape, num_classes, device, f"{where}: its model", made(done))
            cost = done.cost
            rows.append(
                CostRow(
                    method=entry.name,
                    params=count_params(model),
                    macs=cost.macs,
                    flops=cost.flops,
                    latency_b1_ms=latency_ms(model, shape, 1, device) if latency else None,
                )
            )
        except PluginFailed as exc:
            raise UsageError(f"{where}: {plugins.claim(exc, entry.name)}") from exc
        except BenchError:
            raise
        except Exception as exc:  # e.g. an input too small for the architecture's downsampling
            raise UsageError(f"{where}: {one_line(exc)}") from exc
    return rows


def significant(x: float, digits: int = 3) -> str:
    """``x`` with at least ``digits`` significant digits and no exponent: 12.5, 0.0125, 1,304."""
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def render_costs(
    rows: list[CostRow], title: str, reference: list[RefValue] | None = None, console: Console | None = None
) -> None:
    """One row per method: parameters (count and M), MACs and FLOPs in M (one unit per column, at least three
    significant digits), batch-1 latency; with a reference, the paper's parameter (and MAC) counts beside."""
    ref_m = {v.method: v.value for v in reference or [] if v.metric == "params_millions" and not v.variant}
    ref_exact = {v.method: int(v.value) for v in reference or [] if v.metric == "params" and not v.variant}
    ref_macs = {v.method: v.value for v in reference or [] if v.metric == "macs_millions" and not v.variant}
    table = Table(title=title, title_justify="left")
    for col in ("method", "params", "params (M)", MACS_COLUMN, "FLOPs (M)", "latency b1 (ms)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    if reference:
        for col in ("paper params (M)", "Δ (M)", "exact reference") + (("paper MACs (M)",) if ref_macs else ()):
            table.add_column(col, justify="right")
    for r in rows:
        line = [
            r.method,
            f"{r.params:,}",
            significant(r.params / 1e6),
            significant(r.macs / 1e6),
            significant(r.flops / 1e6),
            significant(r.latency_b1_ms) if r.latency_b1_ms is not None else "-",
        ]
        if reference:
            paper = ref_m.get(r.method)
            exact = ref_exact.get(r.method)
            line += [
                f"{paper:.2f}" if paper is not None else "-",
                f"{r.params / 1e6 - paper:+.2f}" if paper is not None else "-",
                ("equal" if exact == r.params else f"{exact:,} (differs)") if exact is not None else "-",
            ]
            if ref_macs:
                line.append(f"{ref_macs[r.method]:.2f}" if r.method in ref_macs else "-")
        table.add_row(*line)
    (console or Console()).print(table)
    (console or Console()).print(f"[dim]Deployed models, untrained, batch 1. {COST_NOTE}[/dim]", highlight=False)
