"""Golden values of logit standardisation (Sun et al., CVPR 2024) from the authors' code.

Runs a checkout of sunshangquan/logit-standardization-KD (given on the command line): its ``normalize``
(the Z-score, ``mdistiller/distillers/KD.py``) on fixed logits, one row of them constant; its ``KD`` and
``DKD`` distillers' ``forward_train`` with the settings its ``tools/train.py`` makes of
``--logit-stand --base-temp 2 --kd-weight 9`` (the README's command): for KD the temperature becomes the base
temperature and the KD weight 9; for DKD alpha and beta are multiplied by 9 and T becomes the base
temperature, on top of the pair's yaml. Writes the CE and distillation terms and the gradient of their sum
w.r.t. the student logits. Needs ``yacs`` importable (PYTHONPATH). This script never imports the harness.
"""

from __future__ import annotations

from _reference import Reference
from dkd import YACS, Fixed, dkd_params, inputs, reference_cfg, reference_step

BASE_TEMP, KD_WEIGHT = 2.0, 9.0  # tools/train.py's --base-temp and --kd-weight defaults (the README's command)

#: (case name, distiller, DKD config yaml or None, 1-based epoch)
CASES = [
    ("kd", "KD", None, 1),
    ("dkd_res32x4_res8x4_epoch10", "DKD", "resnet32x4_resnet8x4.yaml", 10),
    ("dkd_res32x4_res8x4_epoch30", "DKD", "resnet32x4_resnet8x4.yaml", 30),
    ("dkd_resnet56_resnet20_epoch30", "DKD", "resnet56_resnet20.yaml", 30),
]


def logit_stand(cfg, distiller: str) -> None:
    """What the authors' tools/train.py does to the configuration under --logit-stand (its own lines, as
    settings: cfg.EXPERIMENT.LOGIT_STAND and the KD/DKD overrides)."""
    cfg.EXPERIMENT.LOGIT_STAND = True
    if distiller == "KD":
        cfg.KD.LOSS.KD_WEIGHT = KD_WEIGHT
        cfg.KD.TEMPERATURE = BASE_TEMP
    else:
        cfg.DKD.ALPHA = cfg.DKD.ALPHA * KD_WEIGHT
        cfg.DKD.BETA = cfg.DKD.BETA * KD_WEIGHT
        cfg.DKD.T = BASE_TEMP


def main() -> None:
    ref = Reference(
        "logit_std",
        "mdistiller/distillers/KD.py (normalize, KD.forward_train), mdistiller/distillers/DKD.py, "
        "mdistiller/engine/cfg.py, tools/train.py (--logit-stand overrides), configs/cifar100/dkd/*.yaml",
        "sunshangquan/logit-standardization-KD",
        env=YACS,
    )
    repo = ref.checkout
    from mdistiller.distillers.DKD import DKD  # the reference
    from mdistiller.distillers.KD import KD, normalize

    base = reference_cfg(repo)
    data = inputs()
    constant = data["student_logits"][:4].clone()
    constant[1] = 0.5  # a constant row: its standard deviation is 0
    data["normalize_input"] = constant
    expected = {"normalize": normalize(constant)}
    params: dict = {"base_temp": BASE_TEMP, "kd_weight": KD_WEIGHT}
    for case, kind, config, epoch in CASES:
        cfg = base.clone()
        cfg.DISTILLER.TYPE = kind
        if config:
            cfg.merge_from_file(str(repo / "configs" / "cifar100" / "dkd" / config))
        logit_stand(cfg, kind)
        cls = KD if kind == "KD" else DKD
        expected[case] = reference_step(cls(Fixed(), Fixed(data["teacher_logits"]), cfg), data, epoch)
        params[case] = (
            {"ce_weight": cfg.KD.LOSS.CE_WEIGHT, "kd_weight": cfg.KD.LOSS.KD_WEIGHT, "temperature": cfg.KD.TEMPERATURE}
            if kind == "KD"
            else dkd_params(cfg, config, epoch)
        )
    ref.write(data, expected, params)


if __name__ == "__main__":
    main()
