"""Golden values of RepDistiller's attention transfer (``distiller_zoo/AT.py``, ``Attention(p=2)``): the
training loop's ``sum(criterion_kd(g_s, g_t))`` over three level pairs, and its gradients w.r.t. the student's
features. See ``_repdistiller.py`` for the command line."""

from _repdistiller import Reference, gradients, level_inputs

ref = Reference("at", "distiller_zoo/AT.py")
from distiller_zoo.AT import Attention  # noqa: E402  (from the checkout)

s, t = level_inputs(0)
loss = sum(Attention(p=2)(s, t))
ref.write(
    {**{f"s{i}": f for i, f in enumerate(s)}, **{f"t{i}": f for i, f in enumerate(t)}},
    {"loss": loss, **gradients(loss, {f"s{i}": f for i, f in enumerate(s)})},
    {"p": 2},
)
