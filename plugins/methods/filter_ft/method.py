"""Filter-level fine-tuning for distorted images (Bianchi, Vendra, Protopapas, Brambilla: "Improving Image
Classification Robustness through Selective CNN-Filters Fine-Tuning", arXiv 1904.03949, 2019).

A method on the trained baseline. Its plan has two stages: the shared ``baseline`` and ``finetune`` (needs the
baseline). Building ``finetune`` ranks the baseline's convolution filters by how much the distortion changes
their activation maps (``ranking.py``: L2 distance between the clean and the distorted image's output map of
each filter, every ranking image a Borda-count voter over the filters of each layer) and selects the most
affected ones; then a copy of the baseline is fine-tuned on distorted training images with cross-entropy,
where only the selected filters (their weights and biases) can change: every other parameter is frozen, and
the selected layers' weight gradients are masked per filter. The record holds top-1 on the clean test set and
on the test set under the same distortion (the method asks the harness for it; add the distortion to
``--eval-distort`` so that the baseline's row has it too). ``select=layers`` is the comparison: whole
convolution layers, the most affected first, at the same share of filters.

Options: ``distortion`` (``noise:SIGMA`` or ``blur:SIGMA``, the shared definitions of
``harness.data.distortions``), ``fraction`` (share of filters fine-tuned), ``select`` (``filters`` /
``layers``), ``rank_images`` (training images used for the ranking), ``epochs_ratio`` and ``lr_scale`` (the
fine-tuning budget relative to the run's recipe; the schedule shape is the run's).

Only the abstract of the paper is at hand; these readings are ours and are recorded as options:

* the activation map of a filter is its convolution's output (before BatchNorm and the non-linearity);
* the Borda voters are the ranking images, one ranking per layer; the top ``fraction`` of every layer is
  fine-tuned (not a global ranking across layers);
* BatchNorm layers stay in evaluation mode with their statistics and affine parameters frozen, and the
  classifier is frozen, so that an unselected filter's output is exactly the baseline's for the same input;
* weight decay is off while fine-tuning: SGD's weight decay would otherwise shrink the frozen filters of a
  selected layer (their gradient is masked, their decay is not);
* fine-tuning batches are the run's (same seeded order, crop and flip) with the distortion applied to every
  batch afresh (noise drawn per batch from the run's seed), not a fixed distorted copy of the training set.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from harness.api import (
    COUNT,
    FRACTION,
    POSITIVE,
    DistortedTrainStream,
    Method,
    Objective,
    Option,
    Plan,
    Report,
    RunEnv,
    RunInfo,
    Stage,
    StageContext,
    TrainData,
    TrainedStage,
    count_params,
    parse_distortion,
    to_unit,
)
from plugins.methods.filter_ft.ranking import conv_layers, evidence, top_filters, top_layers


class MaskedFinetune(Objective):
    """Cross-entropy on ``model`` where only the filters in ``masks`` (conv path -> bool per filter) train."""

    def __init__(self, model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
        super().__init__(model)
        for p in model.parameters():
            p.requires_grad_(False)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                self.freeze(m)
        self.paths = list(masks)
        self.masks = nn.Module()  # the selection, kept with the artifact (buffers; no parameters)
        convs = conv_layers(model)
        for i, (path, mask) in enumerate(masks.items()):
            self.masks.register_buffer(f"layer{i}", mask.to(convs[path].weight.device))
            if not bool(mask.any()):
                continue
            for p in convs[path].parameters():
                p.requires_grad_(True)
                p.register_hook(_masking(mask.to(p.device), p.dim()))

    def selected(self) -> dict[str, torch.Tensor]:
        return {path: getattr(self.masks, f"layer{i}") for i, path in enumerate(self.paths)}


def _masking(mask: torch.Tensor, dims: int):
    keep = mask.to(torch.float32).view(-1, *([1] * (dims - 1)))
    return lambda grad: grad * keep.to(grad.dtype)


class FilterFinetune(Method):
    options = {
        "distortion": Option(
            "noise:0.1", "the distortion fine-tuned for: noise:SIGMA (pixel units 0-1) or blur:SIGMA (pixels)"
        ),
        "fraction": Option(
            0.25,
            "share of filters fine-tuned: of each conv layer (select=filters) or of all "
            "filters, in whole layers (select=layers)",
            constraint=FRACTION,
        ),
        "select": Option(
            "filters",
            "filters: the most affected filters of every layer (the paper); layers: "
            "whole layers, most affected first (the layer-level comparison)",
            ("filters", "layers"),
        ),
        "rank_images": Option(500, "training images used for the ranking (clean and distorted)", constraint=COUNT),
        "epochs_ratio": Option(0.1, "fine-tuning epochs as a fraction of the run's", constraint=POSITIVE),
        "lr_scale": Option(0.1, "fine-tuning learning rate relative to the run's", constraint=POSITIVE),
    }

    def plan(self, run: RunInfo) -> Plan:
        self.check()
        recipe = run.recipe.with_overrides(
            epochs=run.recipe.scaled(self.opts["epochs_ratio"]),
            lr=run.recipe.lr * self.opts["lr_scale"],
            weight_decay=0.0,
        )
        stage = Stage(
            "finetune",
            self.objective,
            config=self.config(),
            needs={"baseline": run.baseline()},
            recipe=recipe,
            data=self.data,
        )
        return Plan(stage, report=self.report)

    def check(self) -> None:
        """The distortion must parse (the numeric options' ranges are their declared constraints)."""
        parse_distortion(self.opts["distortion"])

    def ranking_images(self, ctx: StageContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(clean, distorted) normalised ranking images: the first ``rank_images`` of a seeded permutation of
        the training set."""
        ds = ctx.dataset
        n = min(self.opts["rank_images"], int(ds.train_labels.numel()))
        order = torch.randperm(int(ds.train_labels.numel()), generator=torch.Generator().manual_seed(ctx.seed))[:n]
        clean = to_unit(ds.train_images[order].to(ctx.device))
        distortion = parse_distortion(self.opts["distortion"])
        distorted = distortion.apply(clean, distortion.generator(ctx.seed, "rank", 0))
        place = (lambda x: x.contiguous(memory_format=torch.channels_last)) if ctx.channels_last else (lambda x: x)
        return place(ctx.normalizer(clean * 255)), place(ctx.normalizer(distorted * 255))

    def objective(self, ctx: StageContext) -> MaskedFinetune:
        model = copy.deepcopy(ctx.model_of("baseline"))
        found = evidence(model, *self.ranking_images(ctx))
        choose = top_filters if self.opts["select"] == "filters" else top_layers
        return MaskedFinetune(model, choose(found, self.opts["fraction"]))

    def data(self, ctx: StageContext) -> TrainData:
        ds = ctx.dataset
        stream = DistortedTrainStream(
            ds.train_images,
            ds.train_labels,
            distortion=parse_distortion(self.opts["distortion"]),
            batch_size=ctx.recipe.batch_size,
            seed=ctx.seed,
            normalizer=ctx.normalizer,
            device=ctx.device,
            channels_last=ctx.channels_last,
        )
        return TrainData(stream, info={"trained_on": f"training images under {self.opts['distortion']}"})

    def report(self, deployed: TrainedStage, env: RunEnv) -> Report:
        objective = deployed.objective
        assert isinstance(objective, MaskedFinetune)
        convs = conv_layers(objective.model)
        selected = objective.selected()
        per_layer = {path: [int(mask.sum()), int(mask.numel())] for path, mask in selected.items()}
        tuned = sum(
            int(mask.sum()) * convs[path].weight[0].numel() + (int(mask.sum()) if convs[path].bias is not None else 0)
            for path, mask in selected.items()
        )
        info = {
            **deployed.info,
            "baseline_artifact": deployed.inputs["baseline"].key,
            "distortion": self.opts["distortion"],
            "select": self.opts["select"],
            "filters_selected": sum(v[0] for v in per_layer.values()),
            "filters_total": sum(v[1] for v in per_layer.values()),
            "selected_per_layer": per_layer,
            "params_finetuned": tuned,
            "params_finetuned_share": tuned / max(1, count_params(objective.model)),
            "eval_distortions": [parse_distortion(self.opts["distortion"]).name],
        }
        return Report(info=info)
