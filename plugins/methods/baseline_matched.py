"""``baseline-matched``: the equal-compute control of EncodeNet (issue 11).

EncodeNet's default split retrains most of the baseline's weights (all of resnet20/32's last stage, about
three quarters of them) for the run's full recipe, after an autoencoder stage that also updates the
encoder: "baseline vs EncodeNet" then compares one training run with a much longer one. This control
continues the trained baseline with plain cross-entropy for exactly the image-epochs that EncodeNet spends
after the baseline (autoencoder epochs + head epochs, both over the same N training images), with the run's
schedule shape (optimiser, learning rate, milestones rescaled to the new epoch count) started afresh, as
EncodeNet's stages start theirs.

Its plan has two stages: the shared ``baseline`` and ``matched`` (needs the baseline; a copy of its trained
model). The epoch count is derived from the reference EncodeNet's own plan (its stages after the baseline),
so the two cannot drift apart; the record says which stages it matched and how many image-epochs, and its
``info.compute`` holds its training compute relative to the baseline's, counted as EncodeNet counts its own.
"""

from __future__ import annotations

import copy

from harness.api import (
    Method,
    Objective,
    Option,
    Plan,
    Report,
    RunEnv,
    RunInfo,
    Stage,
    StageContext,
    TrainedStage,
    UsageError,
    count_flops,
)
from plugins.methods.encodenet.method import EncodeNet, EncodeNetClassTarget, EncodeNetFinetune, EncodeNetInputTarget

REFERENCES: dict[str, type[EncodeNet]] = {
    "encodenet": EncodeNet,
    "encodenet-class": EncodeNetClassTarget,
    "encodenet-input": EncodeNetInputTarget,
    "encodenet-finetune": EncodeNetFinetune,
}


def parse_reference_options(text: str) -> dict[str, str]:
    """``ae_epochs=3;split=classifier`` -> ``{"ae_epochs": "3", "split": "classifier"}``."""
    pairs = [p.strip() for p in text.split(";") if p.strip()]
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise UsageError(f"option baseline-matched.reference_opts: expected NAME=VALUE;NAME=VALUE, got {bad[0]!r}")
    return {name.strip(): value.strip() for name, value in (p.split("=", 1) for p in pairs)}


class BaselineMatched(Method):
    options = {
        "reference": Option(
            "encodenet", "the EncodeNet method whose training after the baseline is matched", tuple(REFERENCES)
        ),
        "reference_opts": Option(
            "", "that method's options, NAME=VALUE;NAME=VALUE (e.g. ae_epochs=100); empty = its defaults"
        ),
    }

    def reference(self) -> EncodeNet:
        cls = REFERENCES[self.opts["reference"]]
        raw = parse_reference_options(self.opts["reference_opts"])
        return cls(self.opts["reference"], cls.parse_options(self.opts["reference"], raw))

    def matched_stages(self, run: RunInfo) -> dict[str, int]:
        """Epochs of each stage the reference trains after the shared baseline (from its own plan)."""
        baseline = run.baseline().label
        return {
            stage.label: stage.epochs(run.recipe)
            for stage in self.reference().plan(run).stages()
            if stage.label != baseline and stage.trains
        }

    def plan(self, run: RunInfo) -> Plan:
        epochs = sum(self.matched_stages(run).values())
        matched = Stage(
            "matched",
            self.objective,
            config=self.config(),
            needs={"baseline": run.baseline()},
            recipe=run.recipe.with_overrides(epochs=epochs),
        )
        return Plan(matched, report=self.report)

    def objective(self, ctx: StageContext) -> Objective:
        """The trained baseline (a copy), trained further with plain cross-entropy."""
        return Objective(copy.deepcopy(ctx.model_of("baseline")))

    def report(self, deployed: TrainedStage, env: RunEnv) -> Report:
        base = deployed.inputs["baseline"]
        run = RunInfo(arch=env.arch, recipe=env.recipe, seed=env.seed)
        stages = self.matched_stages(run)
        n = len(env.dataset.train_labels)
        info = {
            **deployed.info,
            "baseline_artifact": base.key,
            "matches": self.opts["reference"],
            "matched_stages": stages,
            "matched_epochs": sum(stages.values()),
            "matched_image_epochs": n * sum(stages.values()),
            "compute": self.compute(env, deployed, base),
        }
        return Report(info=info)

    @staticmethod
    def compute(env: RunEnv, matched: TrainedStage, base: TrainedStage) -> dict:
        """Training compute relative to the baseline's, counted as EncodeNet counts its own (a training step
        = 3x forward FLOPs)."""
        ds = env.dataset
        f_model = count_flops(matched.model, (ds.in_chans, ds.input_size, ds.input_size), env.device)
        n = len(ds.train_labels)
        baseline_flops = 3 * f_model * n * len(base.history)
        extra = 3 * f_model * n * len(matched.history)
        return {
            "flops_relative_to_baseline": (baseline_flops + extra) / baseline_flops,
            "seconds_relative_to_baseline": (base.seconds + matched.seconds) / max(1e-9, base.seconds),
            "stage_training_flops": {"baseline": baseline_flops, "matched": extra},
            "image_epochs": {"baseline": n * len(base.history), "after_baseline": n * len(matched.history)},
            "note": "stage seconds are those of the run that trained each stage (reused artifacts keep their time)",
        }
