"""``anytime``: train every exit of a multi-exit architecture, evaluate it anytime and under budgets.

Source: Huang et al., "Multi-Scale Dense Networks for Resource Efficient Image Classification" (ICLR 2018):
the loss is the weighted sum of the exits' cross-entropies (``weights``, uniform by default, as the
authors' code); anytime evaluation gives every exit's test accuracy with the cumulative MACs of reaching it
(earlier classifiers included); budgeted batch evaluation chooses per-exit confidence thresholds on a
held-out split so that the average MACs meet each budget (``budget.py``). The record's ``info.anytime``
holds both, and a figure beside the record draws them; ``bench plot`` draws them beside other architectures
of the same data and recipe.

Held-out split (``thresholds``): ``val`` uses the run's ``--val-split`` (as the authors, who hold out 5,000
training images); ``train`` uses up to 5,000 of the training images themselves, un-augmented (optimistic:
the network has fitted them, so its confidence there is higher than on new images; the record says which
was used); ``auto`` (default) is ``val`` when the run has a validation split, else ``train``.

Deviations: the run's recipe, not the authors' (SGD, lr 0.1, batch 64, 300 epochs, /10 at 150 and 225); the
weights kept are the run's selection (``--select``), evaluated on the last exit during training.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch.nn import functional as F

from harness.api import (
    COUNT,
    NON_NEGATIVE,
    EvalStream,
    Method,
    MultiExitModel,
    Objective,
    Option,
    Plan,
    Report,
    RunEnv,
    RunInfo,
    StageContext,
    StepOutput,
    TrainedStage,
    UsageError,
    exit_costs,
    require_multi_exit,
)
from plugins.methods.anytime.budget import ExitLogits, budgeted_curve, budgets_between

TRAIN_HELD_OUT = 5000  # training images used for thresholds when the run has no validation split


def parse_weights(raw: str, exits: int) -> list[float]:
    """``uniform`` or one comma-separated weight per exit."""
    if raw == "uniform":
        return [1.0] * exits
    try:
        weights = [float(w) for w in raw.split(",")]
    except ValueError:
        raise UsageError(f"option anytime.weights: expected 'uniform' or numbers, got {raw!r}") from None
    if len(weights) != exits or not all(NON_NEGATIVE.allows(w) for w in weights) or not any(weights):
        raise UsageError(
            f"option anytime.weights: give {exits} finite non-negative weights (one per exit), got {raw!r}"
        )
    return weights


class MultiExitObjective(Objective):
    """The weighted sum of every exit's cross-entropy (one loss term per exit); logits of the last exit."""

    model: MultiExitModel

    def __init__(self, model: MultiExitModel, weights: list[float]) -> None:
        super().__init__(model)
        self.weights = weights

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> StepOutput:
        logits = self.model.forward_exits(images)
        losses = {
            f"ce_exit{k + 1}": w * F.cross_entropy(lg, labels) for k, (w, lg) in enumerate(zip(self.weights, logits))
        }
        return StepOutput(losses=losses, logits=logits[-1])


class Anytime(Method):
    options = {
        "weights": Option("uniform", "loss weight per exit: uniform or w1,w2,... (one per exit)"),
        "thresholds": Option(
            "auto",
            "held-out split for the budgeted thresholds: auto (val if --val-split, else train), val, train",
            ("auto", "val", "train"),
        ),
        "budgets": Option(
            10, "number of MAC budgets, evenly spaced from the first exit's cost to the last's", constraint=COUNT
        ),
    }

    def objective(self, ctx: StageContext) -> Objective:
        model = require_multi_exit(ctx.build_arch(), self.name)
        if self.opts["thresholds"] == "val" and ctx.dataset.val_images is None:
            raise UsageError("option anytime.thresholds=val needs a validation split: add --val-split FRACTION")
        return MultiExitObjective(model, parse_weights(self.opts["weights"], model.num_exits))

    def plan(self, run: RunInfo) -> Plan:
        return Plan(
            super().plan(run).deploy,
            report=partial(anytime_report, thresholds=self.opts["thresholds"], budgets=self.opts["budgets"]),
        )


@torch.no_grad()
def exit_logits(model: MultiExitModel, stream: EvalStream, env: RunEnv) -> ExitLogits:
    model.eval()
    per_exit: list[list[torch.Tensor]] = []
    labels = []
    for images, y in stream:
        with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=env.amp):
            outs = model.forward_exits(images)
        per_exit = per_exit or [[] for _ in outs]
        for bucket, out in zip(per_exit, outs):
            bucket.append(out.float().cpu())
        labels.append(y.cpu())
    return ExitLogits.from_logits([torch.cat(b) for b in per_exit], torch.cat(labels))


def held_out_stream(env: RunEnv, thresholds: str) -> tuple[str, EvalStream]:
    """The split thresholds are chosen on: the validation split, or up to 5,000 training images."""
    val = env.eval_stream("val")
    if thresholds in ("auto", "val") and val is not None:
        return "val", val
    ds = env.dataset
    pick = torch.randperm(ds.train_labels.numel(), generator=torch.Generator().manual_seed(0))[:TRAIN_HELD_OUT]
    return "train", EvalStream(
        ds.train_images[pick],
        ds.train_labels[pick],
        batch_size=env.eval_batch_size,
        normalizer=env.normalizer,
        device=env.device,
        channels_last=env.channels_last,
    )


def anytime_report(deployed: TrainedStage, env: RunEnv, *, thresholds: str, budgets: int) -> Report:
    model = require_multi_exit(deployed.model, "anytime")
    ds = env.dataset
    costs = exit_costs(model, (ds.in_chans, ds.input_size, ds.input_size), env.device)
    test_stream = env.eval_stream("test")
    assert test_stream is not None
    test = exit_logits(model, test_stream, env)
    split, stream = held_out_stream(env, thresholds)
    held_out = exit_logits(model, stream, env)
    macs = [float(c.macs) for c in costs]
    exits = [
        {"exit": k + 1, "macs": c.macs, "flops": c.flops, "test_acc": acc, f"{split}_acc": held}
        for k, (c, acc, held) in enumerate(zip(costs, test.accuracy_per_exit(), held_out.accuracy_per_exit()))
    ]
    info = {
        "exits": exits,
        "weights": deployed.objective.weights,
        "thresholds_on": split,
        "held_out_images": int(held_out.labels.numel()),
        "budgeted": budgeted_curve(held_out, test, macs, budgets_between(macs, budgets)),
    }
    return Report(
        info={**deployed.info, "anytime": info},
        extra_params=deployed.objective.extra_params(),
        figures={"anytime": partial(draw_anytime, info=info, title=f"{model.arch_name} | {ds.name}")},
    )


def draw_anytime(path: Path, *, info: dict, title: str) -> None:
    from harness.api import anytime_axes, save_figure

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    anytime_axes(ax, [info], label="")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)
