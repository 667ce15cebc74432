"""The built-in method plugins, declared by reference (``harness.api.declared_plugin``).

One plugin per method family, as ``bench plugins`` lists them; each module under ``plugins/methods/`` holds
the implementation, and this file says what each registers, with its description. Listing methods imports
none of them: a method's module is imported when the method is used.
"""

from __future__ import annotations

from harness.api import declared_plugin

baseline = declared_plugin(
    "methods",
    [
        (
            "baseline",
            "plugins.methods.baseline:Baseline",
            "the architecture trained with cross-entropy (the reference every method is compared with)",
        ),
    ],
)
se = declared_plugin(
    "methods",
    [
        ("se", "plugins.methods.se:SE", "Squeeze-and-Excitation in every residual block (timm SEModule)"),
    ],
)
cbam = declared_plugin(
    "methods",
    [
        ("cbam", "plugins.methods.cbam:CBAM", "CBAM channel + spatial gates in every residual block (timm CbamModule)"),
    ],
)
eca = declared_plugin(
    "methods",
    [
        (
            "eca",
            "plugins.methods.eca:ECA",
            "ECA: 1-D convolution across channels, kernel adapted to C (gamma 2, b 1), in every residual block "
            "(timm EcaModule)",
        ),
    ],
)
gc = declared_plugin(
    "methods",
    [
        (
            "gc",
            "plugins.methods.gc:GC",
            "GCNet global context block: attention pooling, C/16 bottleneck with LayerNorm, added to every position "
            "(timm GlobalContext, the official init)",
        ),
    ],
)
timm_attention = declared_plugin(
    "methods",
    [
        (
            "attn:",
            "plugins.methods.timm_attention:TimmAttention",
            "any attention type of timm's create_attn (attn:eca, attn:gc, attn:cbam, ...) at the architecture's "
            "attention sites, timm's defaults as options",
        ),
    ],
    name="timm-attention",
)
bam = declared_plugin(
    "methods",
    [
        ("bam", "plugins.methods.bam:BAM", "BAM channel + dilated spatial attention between levels"),
    ],
)
gam = declared_plugin(
    "methods",
    [
        (
            "gam",
            "plugins.methods.gam:GAM",
            "GAM per-pixel channel MLP + 7x7 spatial convolutions in every residual block",
        ),
        (
            "gam-gc",
            "plugins.methods.gam:GAMGroupConv",
            "GAM with group convolutions (groups=4) and channel shuffle (the paper's 'gc' variant)",
        ),
    ],
)
kd = declared_plugin(
    "methods",
    [
        (
            "kd",
            "plugins.methods.kd:KD",
            "Hinton knowledge distillation: 0.1 CE + 0.9 T^2 KL, T=4 (CRD benchmark); "
            "logit_std=true: logit standardisation (Sun et al. 2024)",
        ),
    ],
)
dkd = declared_plugin(
    "methods",
    [
        (
            "dkd",
            "plugins.methods.dkd:DKD",
            "decoupled KD: CE + alpha TCKD + beta NCKD, T=4, 20-epoch warm-up, mdistiller's per-pair beta",
        ),
    ],
)
rkd = declared_plugin(
    "methods",
    [
        ("rkd", "plugins.methods.rkd:RKD", "relational KD: distance (25) and angle (50) terms on the pooled embedding"),
    ],
)
fitnet = declared_plugin(
    "methods",
    [
        (
            "fitnet",
            "plugins.methods.fitnet:FitNet",
            "FitNets hint on feature 2 with a conv regressor (CRD single-stage form; stages=2: original)",
        ),
    ],
)
ft = declared_plugin(
    "methods",
    [
        (
            "ft",
            "plugins.methods.ft:FT",
            "factor transfer, the paper's flattened factor loss with the authors' CIFAR settings (beta 500)",
        ),
        (
            "ft-crd",
            "plugins.methods.ft:FTChannelMean",
            "factor transfer, RepDistiller's channel-mean factor variant (beta 200)",
        ),
    ],
)
at = declared_plugin(
    "methods",
    [
        (
            "at",
            "plugins.methods.at:AT",
            "attention transfer: CE + 1000 * attention-map MSE at every level (CRD benchmark)",
        ),
    ],
)
sp = declared_plugin(
    "methods",
    [
        (
            "sp",
            "plugins.methods.sp:SP",
            "similarity-preserving KD: CE + 3000 * batch-similarity distance on the last level (CRD benchmark)",
        ),
    ],
)
cc = declared_plugin(
    "methods",
    [
        (
            "cc",
            "plugins.methods.cc:CC",
            "correlation congruence, RepDistiller's form: CE + 0.02 * CC on 128-d linear embeddings (CRD benchmark)",
        ),
    ],
)
pkt = declared_plugin(
    "methods",
    [
        (
            "pkt",
            "plugins.methods.pkt:PKT",
            "probabilistic KT: CE + 30000 * cosine-similarity distribution divergence on the embedding (CRD benchmark)",
        ),
    ],
)
nst = declared_plugin(
    "methods",
    [
        (
            "nst",
            "plugins.methods.nst:NST",
            "neuron selectivity transfer: CE + 50 * polynomial-kernel MMD at every level (CRD benchmark)",
        ),
    ],
)
vid = declared_plugin(
    "methods",
    [
        (
            "vid",
            "plugins.methods.vid:VID",
            "variational information distillation: CE + Gaussian NLL of 1x1-conv regressors at every level "
            "(CRD benchmark)",
        ),
    ],
)
crd = declared_plugin(
    "methods",
    [
        (
            "crd",
            "plugins.methods.crd:CRD",
            "contrastive representation distillation: NCE with a memory bank of 16384 negatives (CRD, RepDistiller)",
        ),
    ],
)
fsp = declared_plugin(
    "methods",
    [
        (
            "fsp",
            "plugins.methods.fsp:FSP",
            "flow of solution procedure: FSP-matrix pre-training of the student's levels, then cross-entropy",
        ),
    ],
)
ab = declared_plugin(
    "methods",
    [
        (
            "ab",
            "plugins.methods.ab:AB",
            "activation boundaries: pre-training of the student's levels on the teacher's pre-ReLU signs, then "
            "cross-entropy",
        ),
    ],
)
encodenet = declared_plugin(
    "methods",
    [
        (
            "encodenet",
            "plugins.methods.encodenet.method:EncodeNet",
            "EncodeNet: intraclass clusters, entropy-selected representatives, converting AE, frozen encoder",
        ),
        (
            "encodenet-class",
            "plugins.methods.encodenet.method:EncodeNetClassTarget",
            "EncodeNet ablation: one lowest-entropy representative per class, no clustering (Table 3)",
        ),
        (
            "encodenet-input",
            "plugins.methods.encodenet.method:EncodeNetInputTarget",
            "EncodeNet ablation: autoencoder target = the input itself (a plain autoencoder, Table 3)",
        ),
        (
            "encodenet-finetune",
            "plugins.methods.encodenet.method:EncodeNetFinetune",
            "EncodeNet pipeline with the encoder fine-tuned, not frozen (a different method)",
        ),
    ],
)
baseline_matched = declared_plugin(
    "methods",
    [
        (
            "baseline-matched",
            "plugins.methods.baseline_matched:BaselineMatched",
            "equal-compute control of EncodeNet: the baseline continued with cross-entropy for EncodeNet's "
            "post-baseline image-epochs, same schedule shape",
        ),
    ],
    name="baseline-matched",
)
anytime = declared_plugin(
    "methods",
    [
        (
            "anytime",
            "plugins.methods.anytime.method:Anytime",
            "multi-exit training (weighted sum of the exits' CE) with anytime and budgeted-batch evaluation (MSDNet, "
            "Huang et al., ICLR 2018); needs a multi-exit arch such as msdnet",
        ),
    ],
)
wavecnet = declared_plugin(
    "methods",
    [
        (
            "wavecnet",
            "plugins.methods.wavecnet.method:WaveCNet",
            "WaveCNet (Li et al., CVPR 2020): every max-pool / strided conv / avg-pool replaced by DWT low-frequency "
            "downsampling (Haar built in; dbN, biorX.Y with PyWavelets)",
        ),
    ],
)
lowrank = declared_plugin(
    "methods",
    [
        (
            "lowrank",
            "plugins.methods.lowrank:LowRank",
            "low-rank filters (Ioannou et al., ICLR 2016): every kxk conv replaced by 1xk + kx1 (or a learned 1xk/kx1 "
            "basis + 1x1), trained from scratch",
        ),
    ],
)
dcff = declared_plugin(
    "methods",
    [
        (
            "dcff",
            "plugins.methods.dcff.method:DCFF",
            "DCFF (Lin et al., TPAMI 2023): filters fused by temperature-sharpened inter-similarity distributions "
            "while training from scratch; the compact model deployed",
        ),
    ],
)
filter_ft = declared_plugin(
    "methods",
    [
        (
            "filter-ft",
            "plugins.methods.filter_ft.method:FilterFinetune",
            "filter-level fine-tuning for distorted images (Bianchi et al. 2019): the baseline's filters most changed "
            "by the distortion (Borda count of activation distances) fine-tuned on distorted images",
        ),
    ],
    name="filter-ft",
)
