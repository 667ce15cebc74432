"""EncodeNet (Mahmud et al.): a pipeline of stages, each recorded with its wall time.

Its plan has three stages; the harness keys, caches and reuses each:

1. ``baseline``: the shared baseline stage of the run's arch (never trained twice);
2. ``autoencoder`` (needs the baseline): its training data are prepared first: clustering features of
   every training image (``features.py``), per-class k-means with the elbow choice and each (class,
   cluster)'s lowest-entropy member under the baseline as its representative (``clustering.py``); then the
   encoder (the baseline's stem and first ``split`` levels, initialised from the trained baseline) and a
   decoder derived from their shapes are trained with MSE from each training image to its representative,
   input and target cropped and flipped identically. What the clustering found is kept with the artifact;
3. ``head`` (needs the autoencoder and the baseline): the trained encoder frozen (parameters and BatchNorm
   statistics), the remaining levels and the classifier (the baseline's own layers, so the deployed model
   has exactly the baseline's parameters) trained with cross-entropy under the run's recipe.

Open decisions of the paper and our defaults (all options, all recorded):
* split (``split``): where the frozen encoder ends. The paper says two things: Sec. 3 couples the encoder
  with "additional layers and filters derived from the classification part" (which may include the last
  level(s)), while Fig. 1 says the trained encoder layers are "coupled with fully connected layers, and
  retrained". Values:

  - ``-1`` (default): all levels but the last in the encoder; the head is the last level + pooling +
    classifier. For resnet20/32 that retrains about three quarters of the weights, for the run's full
    recipe: compare it with ``baseline-matched``, the equal-compute continuation of the baseline;
  - ``1`` .. ``N``: the stem and the first ``split`` levels in the encoder (``N``: all of them);
  - ``classifier``: Fig. 1's literal reading, whatever the architecture: everything but the classification
    layers (the head: pooling and the fully connected classifier) is frozen, and the autoencoder encodes
    with every level (its decoder is built from the last level's shape). Same model as ``split=N``.
* encoder initialisation (``encoder_init``): from the trained baseline (default) or random.
* head initialisation (``head_init``): the paper re-trains the classification part; we start it from the
  baseline's weights (default) or from a fresh initialisation.
* autoencoder budget (``ae_epochs``): the paper's 500 epochs against 300 baseline epochs, scaled to the
  run's budget. The decoder is initialised from the run's seed (offset 3).
* autoencoder optimisation (``ae_lr``): the paper states only "MSE" and the 500 epochs (Sec. 4.1 gives lr
  0.1 and weight decay 1e-4 for the baselines). Default: the run's recipe (``ae_lr=0``), as before the
  option existed; ``ae_lr`` sets the stage's own learning rate (the fast recipe's 1.5 makes the MSE diverge:
  docs/fast-track.md says what to pass). The stage never takes the recipe's label smoothing (its loss has no
  labels); it takes every other piece (momentum, weight decay, schedule, BatchNorm lr scale, averaging); see
  :meth:`EncodeNet.autoencoder_recipe`.
* augmentation of autoencoder batches (``ae_augment``): the same translation and flip for input and target,
  as the run's recipe augments (default; the CIFAR-standard 4-pixel crop and random flip unless a recipe such
  as ``fast`` says otherwise), or none.
Ablations (paper Table 3) are separate method names: ``encodenet-input`` (target = the input itself),
``encodenet-class`` (one lowest-entropy representative per class, no clustering); ``encodenet-finetune``
does not freeze the encoder (a different method, not EncodeNet).
"""

from __future__ import annotations

import copy
import time
from functools import partial

import numpy as np
import torch

from harness.api import (
    at_least,
    COUNT,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    LevelClassifier,
    Method,
    Normalizer,
    Objective,
    Option,
    Plan,
    Report,
    RunEnv,
    Recipe,
    RunInfo,
    Stage,
    StageContext,
    TrainData,
    TrainedStage,
    UsageError,
    count_flops,
    count_params,
    require_levels,
)
from plugins.methods.encodenet import clustering, figures, libraries
from plugins.methods.encodenet.autoencoder import (
    ConversionObjective,
    ConvertingAutoencoder,
    Encoder,
    FrozenEncoderObjective,
    build_decoder,
)
from plugins.methods.encodenet.features import clustering_features, pca, require_vgg16_weights

AE_RATIO = 500 / 300  # the paper's autoencoder epochs per baseline epoch
CLASSIFIER = "classifier"  # split: everything but the classification layers in the encoder


#: ``split``: levels in the encoder (at least 1), or -1 (all but the last)
SPLIT = at_least(1, integer=True, also=(-1,))


class SplitOption(Option):
    """``split``: an integer number of encoder levels, or ``classifier`` (all of them: only the
    classification layers train). Integers stay integers, so that the default's keys do not change."""

    def parse(self, raw: str, where: str) -> int | str:
        if raw.strip().lower() == CLASSIFIER:
            return CLASSIFIER
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"option {where}: expected an integer or '{CLASSIFIER}', got {raw!r}") from None
        return self.check(value, where)


@torch.no_grad()
def predict(
    model: LevelClassifier, images: torch.Tensor, normalizer: Normalizer, device: torch.device, batch: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and pooled encoder embeddings of ``model`` for uint8 ``images`` (no
    augmentation), from one forward pass: the entropies and the ``encoder`` clustering features share it."""
    model.eval()
    probs, embeds = [], []
    for i in range(0, len(images), batch):
        feat = model.forward_features(normalizer(images[i : i + batch].to(device)))
        probs.append(torch.softmax(model.head(feat).float(), 1).cpu())
        embeds.append(model.head.embed(feat).float().cpu())
    return torch.cat(probs), torch.cat(embeds)


def copy_head(dst: LevelClassifier, src: LevelClassifier, split: int) -> None:
    """Load the classification part (levels ``split..`` and the head) of ``src`` into ``dst``."""
    for i in range(split, dst.num_levels):
        dst.levels[i].load_state_dict(src.levels[i].state_dict())
    dst.head.load_state_dict(src.head.state_dict())


class EncodeNet(Method):
    options = {
        "split": SplitOption(
            -1,
            "architecture levels in the encoder (the rest + classifier are trained); -1 = all but the "
            "last; classifier = all levels (only the classification layers are retrained)",
            constraint=SPLIT,
        ),
        "features": Option(
            "auto",
            "clustering features: auto (VGG16 if its weights are local, else encoder), "
            "vgg16, encoder (the baseline's), pixels",
            ("auto", "vgg16", "encoder", "pixels"),
        ),
        "vgg16_weights": Option("", "path of ImageNet VGG16 weights (torchvision's vgg16-397923af.pth)"),
        "pca": Option(0, "PCA dimensions before clustering (0: none)", constraint=NON_NEGATIVE_INT),
        "k": Option(0, "clusters per class; 0 = elbow method over k = 1..k_max", constraint=NON_NEGATIVE_INT),
        "k_max": Option(8, "largest k tried by the elbow method", constraint=COUNT),
        "n_init": Option(10, "k-means restarts", constraint=COUNT),
        "correct_only": Option(False, "representatives only among images the baseline classifies correctly"),
        "target": Option(
            "cluster",
            "autoencoder target: cluster (representative of the image's cluster), "
            "class (one per class, no clustering), input (the image itself)",
            ("cluster", "class", "input"),
        ),
        "encoder_init": Option("baseline", "initial encoder weights", ("baseline", "random")),
        "head_init": Option("baseline", "initial weights of the trained classification part", ("baseline", "random")),
        "ae_epochs": Option(
            0, "autoencoder epochs; 0 = 500 per 300 baseline epochs, scaled to the run", constraint=NON_NEGATIVE_INT
        ),
        "ae_augment": Option(
            "same",
            "crop/flip of autoencoder batches (the recipe's translate, pad_mode, flip): same for input and "
            "target, or none",
            ("same", "none"),
        ),
        "ae_lr": Option(
            0.0,
            "autoencoder learning rate; 0 = the run's recipe lr (--recipe fast: pass 0.05, docs/fast-track.md)",
            constraint=NON_NEGATIVE,
        ),
        "figures": Option(True, "draw the paper's figures beside the record"),
    }
    frozen = True

    def plan(self, run: RunInfo) -> Plan:
        if self.opts["features"] == "vgg16":
            require_vgg16_weights(self.opts["vgg16_weights"])
        if self.opts["target"] == "cluster":
            libraries.require(libraries.CLUSTERING, f"method '{self.name}' (target=cluster)")
        if self.opts["figures"]:
            libraries.require(libraries.FIGURES, f"method '{self.name}' (figures=true)")
        baseline = run.baseline()
        ae = Stage(
            "autoencoder",
            self.autoencoder_objective,
            config=self.autoencoder_config(),
            needs={"baseline": baseline},
            recipe=self.autoencoder_recipe(run.recipe),
            data=self.autoencoder_data,
            evaluate="none",
            lr_option=f"--opt {self.name}.ae_lr",
        )
        head = Stage("head", self.head_objective, config=self.config(), needs={"autoencoder": ae, "baseline": baseline})
        return Plan(head, report=self.report)

    def autoencoder_recipe(self, recipe: Recipe) -> Recipe:
        """The autoencoder stage's recipe: the run's, with the autoencoder's epochs (``ae_epochs``), its
        learning rate (``ae_lr``; 0: the run's) and no label smoothing (its loss is an MSE, without labels: the
        recipe's smoothing would not change one step, only the stage key). Every other piece is the run's
        (momentum, weight decay, schedule, BatchNorm lr scale, averaging, augmentation; the whitened first
        layer comes with the baseline's encoder). The harness keys the stage by this recipe, so an option
        changes the key exactly when it changes the recipe (``ae_lr`` equal to the run's lr: the same key)."""
        return recipe.with_overrides(
            epochs=self.opts["ae_epochs"] or recipe.scaled(AE_RATIO),
            lr=self.opts["ae_lr"] or None,  # None: no override
            label_smoothing=0.0,
        )

    def autoencoder_config(self) -> dict:
        """What the autoencoder depends on: the options that shape its targets and its training (not
        ``head_init`` nor the method's name, so that variants of the head share it)."""
        shared = (
            "split",
            "features",
            "vgg16_weights",
            "pca",
            "k",
            "k_max",
            "n_init",
            "correct_only",
            "target",
            "encoder_init",
            "ae_epochs",
            "ae_augment",
        )
        return {k: self.opts[k] for k in shared}

    def split_of(self, model: LevelClassifier) -> int:
        option = self.opts["split"]
        if option == CLASSIFIER:
            return model.num_levels
        split = option if option >= 0 else model.num_levels - 1
        if not 1 <= split <= model.num_levels:
            raise UsageError(
                f"{self.name}.split must be between 1 and {model.num_levels} for {model.arch_name} "
                f"(or -1 for all but the last level, or '{CLASSIFIER}'), got {self.opts['split']}"
            )
        return split

    # ---- stage 2: targets and the converting autoencoder -------------------------------------------------

    def autoencoder_objective(self, ctx: StageContext) -> Objective:
        baseline = require_levels(ctx.model_of("baseline"), self.name)
        split = self.split_of(baseline)
        ds = ctx.dataset
        ae_model = (
            copy.deepcopy(baseline)
            if self.opts["encoder_init"] == "baseline"
            else require_levels(ctx.build_arch(seed_offset=1), self.name)
        )
        torch.manual_seed(ctx.seed + 3)
        decoder = build_decoder(ae_model.level_info, split, ds.in_chans, ds.input_size)
        return ConversionObjective(ConvertingAutoencoder(Encoder(ae_model, split), decoder), ds.in_chans)

    def autoencoder_data(self, ctx: StageContext) -> TrainData:
        """Input/target pairs stacked channel-wise (same crop and flip for both), and what selecting the
        targets found."""
        baseline = require_levels(ctx.model_of("baseline"), self.name)
        reps, info, outputs = self.select_targets(ctx, baseline)
        ds = ctx.dataset
        paired = torch.cat([ds.train_images, ds.train_images[torch.from_numpy(reps.target_of)]], dim=1)
        stream = ctx.stream_of(
            paired,
            ds.train_labels,
            batch_size=ctx.recipe.batch_size,
            normalizer=Normalizer(ds.mean * 2, ds.std * 2, ctx.device),
            augment=self.opts["ae_augment"] == "same",
        )
        return TrainData(stream, info=info, outputs={**outputs, "reps": reps})

    def select_targets(
        self, ctx: StageContext, baseline: LevelClassifier
    ) -> tuple[clustering.Representatives, dict, dict]:
        """Features, clustering and representatives (or the ablations' simpler targets)."""
        ds = ctx.dataset
        labels = ds.train_labels.numpy()
        info: dict = {"target": self.opts["target"]}
        t0 = time.perf_counter()
        probs_t, embeddings = predict(baseline, ds.train_images, ctx.normalizer, ctx.device)
        probs = probs_t.numpy()
        entropies = clustering.entropy(probs)
        correct = probs.argmax(1) == labels
        outputs: dict = {"entropies": entropies, "groups": []}
        if self.opts["target"] == "input":
            info["seconds_targets"] = time.perf_counter() - t0
            return clustering.Representatives(target_of=np.arange(len(labels))), info, outputs
        if self.opts["target"] == "class":
            reps = clustering.one_per_class(labels, entropies, correct, self.opts["correct_only"])
        else:
            feats, described = clustering_features(
                ds.train_images,
                baseline,
                ds.mean,
                ds.std,
                choice=self.opts["features"],
                vgg16_weights=self.opts["vgg16_weights"],
                device=ctx.device,
                note=ctx.note,
                encoder_features=embeddings.numpy(),
            )
            feats = pca(feats, self.opts["pca"], ctx.seed)
            info.update(seconds_features=time.perf_counter() - t0, features=described, dims=int(feats.shape[1]))
            t1 = time.perf_counter()
            groups = clustering.cluster_per_class(
                feats,
                labels,
                k_max=self.opts["k_max"],
                fixed_k=self.opts["k"],
                seed=ctx.seed,
                n_init=self.opts["n_init"],
            )
            reps = clustering.representatives(groups, entropies, correct, self.opts["correct_only"])
            info["seconds_clustering"] = time.perf_counter() - t1
            outputs["groups"] = groups
            info.update(
                k_per_class={ds.classes[g.label]: g.k for g in groups},
                elbow_found={ds.classes[g.label]: g.elbow_found for g in groups},
                inertia_curves={ds.classes[g.label]: g.inertias for g in groups},
            )
        info["seconds_targets"] = time.perf_counter() - t0
        info["representatives"] = [{**g, "class": ds.classes[g["label"]]} for g in reps.groups]
        return reps, info, outputs

    # ---- stage 3: frozen encoder, trained classification part --------------------------------------------

    def head_objective(self, ctx: StageContext) -> Objective:
        autoencoder = ctx.inputs["autoencoder"].model
        assert isinstance(autoencoder, ConvertingAutoencoder)
        split = autoencoder.encoder.split
        classifier = copy.deepcopy(autoencoder.encoder.classifier)  # the trained encoder; the rest is loaded below
        copy_head(
            classifier,
            require_levels(ctx.model_of("baseline"), self.name)
            if self.opts["head_init"] == "baseline"
            else require_levels(ctx.build_arch(seed_offset=2), self.name),
            split,
        )
        return FrozenEncoderObjective(classifier, split, frozen=self.frozen)

    # ---- the record -------------------------------------------------------------------------------------

    def report(self, deployed: TrainedStage, env: RunEnv) -> Report:
        ae = deployed.inputs["autoencoder"]
        base = ae.inputs["baseline"]
        classifier, autoencoder = deployed.model, ae.model
        assert isinstance(classifier, LevelClassifier) and isinstance(autoencoder, ConvertingAutoencoder)
        split = autoencoder.encoder.split
        info = {
            **ae.info,
            **deployed.info,
            "split": split,
            "split_option": self.opts["split"],
            "encoder_levels": classifier.feature_names[: split + 1],
            "frozen_encoder": self.frozen,
            "baseline_artifact": base.key,
            "autoencoder_artifact": ae.key,
            "autoencoder_lr": (ae.stage.recipe or env.recipe).lr,
            "reconstruction_curve": [row.get("train_reconstruction") for row in ae.history],
            "compute": self.compute(env, classifier, autoencoder, base, ae, deployed),
            "trainable_params": sum(p.numel() for p in classifier.parameters() if p.requires_grad),
        }
        return Report(
            info=info,
            extra_params=count_params(autoencoder.decoder),
            figures=self.figures(env, autoencoder, ae.outputs) if self.opts["figures"] else {},
        )

    def compute(
        self,
        env: RunEnv,
        classifier: LevelClassifier,
        autoencoder: ConvertingAutoencoder,
        base: TrainedStage,
        ae: TrainedStage,
        head: TrainedStage,
    ) -> dict:
        """EncodeNet's training compute relative to the baseline's: wall time and a FLOP estimate
        (training step = 3x forward FLOPs; the frozen encoder costs one forward in stage 3)."""
        ds = env.dataset
        shape = (ds.in_chans, ds.input_size, ds.input_size)
        f_model = count_flops(classifier, shape, env.device)
        f_enc = count_flops(autoencoder.encoder, shape, env.device)
        f_ae = count_flops(autoencoder, shape, env.device)
        n = len(ds.train_labels)
        baseline_flops = 3 * f_model * n * len(base.history)
        extra = {
            "features_and_clustering": f_model * n,
            "autoencoder": 3 * f_ae * n * len(ae.history),
            "head": (f_enc + 3 * (f_model - f_enc)) * n * len(head.history),
        }
        seconds = base.seconds + ae.info.get("seconds_targets", 0.0) + ae.seconds + head.seconds
        return {
            "flops_relative_to_baseline": (baseline_flops + sum(extra.values())) / baseline_flops,
            "seconds_relative_to_baseline": seconds / max(1e-9, base.seconds),
            "stage_training_flops": {"baseline": baseline_flops, **extra},
            "image_epochs": {
                "baseline": n * len(base.history),
                "after_baseline": n * (len(ae.history) + len(head.history)),
            },
            "note": "stage seconds are those of the run that trained each stage (reused artifacts keep their time)",
        }

    def figures(self, env: RunEnv, autoencoder: ConvertingAutoencoder, outputs: dict) -> dict:
        ds = env.dataset
        reps = outputs["reps"]
        sample = torch.linspace(0, len(ds.train_labels) - 1, 8).long()
        with torch.no_grad():
            autoencoder.eval()
            out = autoencoder(env.normalizer(ds.train_images[sample].to(env.device))).float().cpu()
        mean = torch.tensor(ds.mean).view(1, -1, 1, 1)
        std = torch.tensor(ds.std).view(1, -1, 1, 1)
        converted = out * std + mean
        targets = ds.train_images[torch.from_numpy(reps.target_of)[sample]]
        drawn = {
            "fig4_entropy": partial(figures.entropy, entropies=outputs["entropies"], reps=reps),
            "fig5_converted": partial(
                figures.converted, inputs=ds.train_images[sample], outputs=converted, targets=targets
            ),
        }
        if outputs.get("groups"):
            drawn["fig2_clusters"] = partial(
                figures.clusters,
                images=ds.train_images,
                labels=ds.train_labels.numpy(),
                groups=outputs["groups"],
                reps=reps,
                classes=ds.classes,
            )
            drawn["fig3_elbow"] = partial(figures.elbow, groups=outputs["groups"], classes=ds.classes)
        return drawn


class EncodeNetClassTarget(EncodeNet):
    options = {
        **EncodeNet.options,
        "target": Option("class", EncodeNet.options["target"].help, ("cluster", "class", "input")),
    }


class EncodeNetInputTarget(EncodeNet):
    options = {
        **EncodeNet.options,
        "target": Option("input", EncodeNet.options["target"].help, ("cluster", "class", "input")),
    }


class EncodeNetFinetune(EncodeNet):
    frozen = False
