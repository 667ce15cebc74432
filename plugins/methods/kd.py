"""``kd``: knowledge distillation (Hinton et al., 2015) as run in the CRD benchmark.

loss = 0.1 * CE + 0.9 * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)), T = 4, the batch mean of the
per-sample KL (RepDistiller ``DistillKL`` with ``-r 0.1 -a 0.9``). torchdistill's samples weight the two
terms the other way round; set ``ce_weight``/``kd_weight`` for that.

``logit_std=true``: logit standardisation (Sun et al., CVPR 2024) as the authors' code runs KD with
``--logit-stand``: the KL term on Z-scored logits, T = ``ls_temperature`` (2) and KD weight ``ls_weight`` (9)
in place of ``temperature`` and ``kd_weight``; the CE (weight 0.1) keeps the raw logits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import NON_NEGATIVE, POSITIVE, LevelClassifier, Objective, Option
from harness.kits.distill import LOGIT_STD_OPTIONS, DistillMethod, KDObjective, check_logit_std


class KD(DistillMethod):
    options = {
        "temperature": Option(4.0, "softmax temperature T", constraint=POSITIVE),
        "ce_weight": Option(0.1, "weight of the cross-entropy with the labels", constraint=NON_NEGATIVE),
        "kd_weight": Option(0.9, "weight of the T^2-scaled KL term", constraint=NON_NEGATIVE),
        **LOGIT_STD_OPTIONS,
    }

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options)
        check_logit_std(self, {"temperature": "ls_temperature", "kd_weight": "ls_weight"})

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        o = self.opts
        if not o["logit_std"]:
            return KDObjective(
                student, teacher, temperature=o["temperature"], ce_weight=o["ce_weight"], kd_weight=o["kd_weight"]
            )
        objective = KDObjective(
            student,
            teacher,
            temperature=o["ls_temperature"],
            ce_weight=o["ce_weight"],
            kd_weight=o["ls_weight"],
            logit_std=True,
        )
        objective.info.update(logit_std=True, temperature=o["ls_temperature"], kd_weight=o["ls_weight"])
        return objective
