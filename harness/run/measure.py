"""What is measured of a deployed model: accuracy protocols (clean and under distortions) and its cost.

The metric names written here are declared, with their meaning and how tables show them, in
:data:`harness.results.records.METRICS`.
"""

from __future__ import annotations

from torch import nn

from harness.data.distortions import Distortion, distorted_accuracy, parse_distortion, unique
from harness.methods.contract import Report
from harness.models.cost import count_cost, measure_latency
from harness.models.levels import count_params
from harness.run.prepare import PreparedRun
from harness.train.env import RunEnv
from harness.train.stage import TrainedStage


def requested_distortions(run: PreparedRun, report: Report | None = None) -> list[Distortion]:
    """The distortions the deployed model is evaluated under: ``--eval-noise`` / ``--eval-distort``, plus any
    the method's report asks for (``info["eval_distortions"]``, e.g. the distortion a method fine-tunes for)."""
    asked = (report.info.get("eval_distortions") if report is not None else None) or []
    return unique([*run.request.eval_distortions, *(parse_distortion(name) for name in asked)])


def distorted_metrics(env: RunEnv, model: nn.Module, distortions: list[Distortion]) -> dict[str, float]:
    """Top-1 (%) of ``model`` on the run's test set under each distortion (``{"noise:0.1": 71.3, ...}``), with
    the run's seed, normalisation and engine settings."""
    ds = env.dataset
    return {
        d.name: distorted_accuracy(
            model,
            ds.test_images,
            ds.test_labels,
            d,
            normalizer=env.normalizer,
            seed=env.seed,
            device=env.device,
            batch_size=env.eval_batch_size,
            channels_last=env.channels_last,
            amp=env.amp,
        )
        for d in distortions
    }


def measure(env: RunEnv, deployed: TrainedStage, report: Report, run: PreparedRun) -> dict:
    """Accuracy protocols (clean, and under the requested distortions) and the deployed model's cost."""
    model = deployed.model.eval()
    accs = [row["test_acc"] for row in deployed.history if "test_acc" in row]
    final = env.evaluate(model)
    metrics: dict = {
        "top1_last": accs[-1] if accs else None,
        "top1_best": max(accs) if accs else None,
        "best_epoch": (accs.index(max(accs)) + 1) if accs else None,
        "top1_selected": final["test_acc"],
        "val_acc_selected": final.get("val_acc"),
        "params_deployed": count_params(model),
        "params_extra": report.extra_params,
    }
    distortions = requested_distortions(run, report)
    if distortions:
        metrics["top1_distorted"] = distorted_metrics(env, model, distortions)
    ds = env.dataset
    shape = (ds.in_chans, ds.input_size, ds.input_size)
    cost = count_cost(model, shape, run.device)
    metrics["macs"], metrics["flops"] = cost.macs, cost.flops
    if run.request.latency:
        big = run.request.latency_batch or (512 if run.device.type == "cuda" else 64)
        metrics["latency_ms"] = {}
        for batch, repeats in ((1, 15), (big, 5)):
            timed = measure_latency(model, shape, batch, run.device, repeats=repeats, channels_last=run.channels_last)
            metrics["latency_ms"] |= {
                f"batch{batch}": timed.median,
                f"batch{batch}_spread": timed.spread,
                f"batch{batch}_repeats": timed.repeats,
            }
    return metrics
