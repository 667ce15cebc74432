"""``kd``: knowledge distillation (Hinton et al., 2015) as run in the CRD benchmark.

loss = 0.1 * CE + 0.9 * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)), T = 4, the batch mean of the
per-sample KL (RepDistiller ``DistillKL`` with ``-r 0.1 -a 0.9``). torchdistill's samples weight the two
terms the other way round; set ``ce_weight``/``kd_weight`` for that.
"""

from __future__ import annotations

from harness.api import NON_NEGATIVE, POSITIVE, LevelClassifier, Objective, Option
from harness.kits.distill import DistillMethod, KDObjective


class KD(DistillMethod):
    options = {
        "temperature": Option(4.0, "softmax temperature T", constraint=POSITIVE),
        "ce_weight": Option(0.1, "weight of the cross-entropy with the labels", constraint=NON_NEGATIVE),
        "kd_weight": Option(0.9, "weight of the T^2-scaled KL term", constraint=NON_NEGATIVE),
    }

    def make_objective(self, student: LevelClassifier, teacher: LevelClassifier) -> Objective:
        return KDObjective(student, teacher, temperature=self.opts["temperature"], ce_weight=self.opts["ce_weight"],
                           kd_weight=self.opts["kd_weight"])
