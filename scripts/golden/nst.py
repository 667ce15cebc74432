"""Golden values of RepDistiller's neuron selectivity transfer (``distiller_zoo/NST.py``, ``NSTLoss``): the
training loop's ``sum(criterion_kd(g_s, g_t))`` over three level pairs, and its gradients w.r.t. the student's
features. See ``_repdistiller.py`` for the command line."""

from _repdistiller import Reference, gradients, level_inputs

ref = Reference("nst", "distiller_zoo/NST.py")
from distiller_zoo.NST import NSTLoss  # noqa: E402  (from the checkout)

s, t = level_inputs(10)
loss = sum(NSTLoss()(s, t))
ref.write(
    {**{f"s{i}": f for i, f in enumerate(s)}, **{f"t{i}": f for i, f in enumerate(t)}},
    {"loss": loss, **gradients(loss, {f"s{i}": f for i, f in enumerate(s)})},
)
