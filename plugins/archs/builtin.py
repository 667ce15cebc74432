"""The built-in architecture plugins, declared by reference (``harness.api.declared_plugin``).

The variant tables below (depths and widths of the CIFAR ResNets, the VGG configurations) are the one place
these architectures are defined by data: each name is registered as its implementation's factory with these
arguments. Each student's
default teacher (for distillation methods run without ``--teacher``) is declared with it, with the source
of the pair; architectures without one get an error listing the pairs that exist.
"""

from __future__ import annotations

from harness.api import declared_plugin, lazy

NARROW = (16, 16, 32, 64)
WIDE = (32, 64, 128, 256)
#: CIFAR ResNets of the CRD benchmark: name -> (depth, widths)
CIFAR_RESNETS: dict[str, tuple[int, tuple[int, int, int, int]]] = {
    **{f"resnet{d}": (d, NARROW) for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": (8, WIDE),
    "resnet32x4": (32, WIDE),
}
#: CIFAR VGGs of the CRD benchmark: name -> widths of the stem and the four levels
CIFAR_VGGS: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}
TIMM_RESNETS = (18, 34, 50, 101)  # timm's ResNets with the CIFAR stem
#: airbench94 (Keller Jordan) and a twice-as-wide variant: name -> widths of the three conv groups
AIRBENCH: dict[str, tuple[int, int, int]] = {"airbench94": (64, 256, 256), "airbench94x2": (128, 512, 512)}

#: student -> (default teacher, where the pair comes from); ``--teacher`` overrides it
DEFAULT_TEACHERS: dict[str, tuple[str, str]] = {
    "resnet20": ("resnet56", "CRD benchmark (RepDistiller) pair resnet56 -> resnet20"),
    "resnet32": ("resnet110", "EncodeNet paper Table 4 and CRD benchmark pair resnet110 -> resnet32"),
    "resnet56": ("resnet110", "CRD benchmark (RepDistiller) pair resnet110 -> resnet56"),
    "resnet8x4": ("resnet32x4", "CRD benchmark (RepDistiller) pair resnet32x4 -> resnet8x4"),
    "vgg8": ("vgg16", "EncodeNet paper Table 4 pair vgg16 -> vgg8 (the CRD benchmark's is vgg13)"),
    "airbench94": (
        "airbench94x2",
        "our choice for the fast track (issue 33): every width doubled; airbench itself has no teacher",
    ),
    **{
        f"resnet{a}": (f"resnet{b}", "the next larger ResNet of the family")
        for a, b in zip(TIMM_RESNETS, TIMM_RESNETS[1:])
    },
}


def _teacher(name: str) -> dict[str, str]:
    if name not in DEFAULT_TEACHERS:
        return {}
    teacher, source = DEFAULT_TEACHERS[name]
    return {"default_teacher": teacher, "teacher_source": source}


cifar_resnet = declared_plugin(
    "archs",
    [
        (
            name,
            lazy("plugins.archs.cifar_resnet:cifar_resnet", depth=depth, widths=widths),
            f"CIFAR ResNet-{depth} (CRD benchmark), widths {list(widths)}",
            _teacher(name),
        )
        for name, (depth, widths) in CIFAR_RESNETS.items()
    ],
)
cifar_vgg = declared_plugin(
    "archs",
    [
        (
            name,
            lazy("plugins.archs.cifar_vgg:cifar_vgg", config=config),
            f"CIFAR {name} with BN (CRD benchmark)",
            _teacher(name),
        )
        for name, config in CIFAR_VGGS.items()
    ],
)
resnet = declared_plugin(
    "archs",
    [
        (
            f"resnet{depth}",
            lazy("plugins.archs.resnet:cifar_stem_resnet", variant=f"resnet{depth}"),
            f"timm ResNet-{depth} with the CIFAR stem (3x3 stride-1 conv, no max-pool)",
            _teacher(f"resnet{depth}"),
        )
        for depth in TIMM_RESNETS
    ],
)
timm = declared_plugin(
    "archs",
    [
        (
            "timm:",
            "plugins.archs.timm_models:timm_model",
            "any timm model by name, e.g. timm:resnet18, timm:convnext_atto",
        ),
    ],
)
msdnet = declared_plugin(
    "archs",
    [
        (
            "msdnet",
            "plugins.archs.msdnet:msdnet",
            "MSDNet (Huang et al., ICLR 2018), CIFAR: 3 scales, an exit after each of 7 blocks (anytime "
            "configuration of the authors' code); train with --methods anytime",
        ),
        (
            "msdnet:",
            "plugins.archs.msdnet:msdnet",
            "MSDNet with options blocks=,step=,base=,stepmode=even|lin,channels=,growth= (budgeted config: "
            "msdnet:blocks=5,step=1,base=1,stepmode=lin)",
        ),
    ],
)
resmlp = declared_plugin(
    "archs",
    [
        (
            "resmlp",
            "plugins.archs.resmlp:resmlp",
            "ResMLP (Touvron et al., 2021) on timm's ResMLP blocks, CIFAR-sized: patch 4, depth 12, width 384 (S12); "
            "the paper's augmentation and distillation are out of scope",
        ),
        (
            "resmlp:",
            "plugins.archs.resmlp:resmlp",
            "ResMLP with options depth=,dim=,patch=,mlp_ratio=,init_values= (e.g. resmlp:depth=12,dim=192)",
        ),
    ],
)
airbench = declared_plugin(
    "archs",
    [
        *[
            (
                name,
                lazy("plugins.archs.airbench:airbench", widths=widths),
                f"airbench94 network (Keller Jordan), conv-group widths {list(widths)}; train with --recipe fast",
                _teacher(name),
            )
            for name, widths in AIRBENCH.items()
        ],
        (
            "airbench:",
            "plugins.archs.airbench:airbench",
            "airbench94 network with options block1=,block2=,block3= (the conv groups' widths, default 64,256,256)",
        ),
    ],
)
