"""Golden values of RepDistiller's variational information distillation (``distiller_zoo/VID.py``): one
``VIDLoss(s, t, t)`` per level pair as ``train_student.py`` builds them, summed as the training loop does.
Stored: each module's initial ``log_scale`` (``init.<k>.log_scale``), then the loss and gradients (student
features, every parameter) with all parameters set from a seed (``<k>.regressor.*``: 0.3 N(0, 1);
``<k>.log_scale``: its initial value + 0.5 N(0, 1), and for the third pair -6 + 0.5 N(0, 1), variances near
the ``eps`` floor, where eps and the softplus matter). See ``_repdistiller.py`` for the command line."""

import torch

from _repdistiller import Reference, gradients, level_inputs, parameters

ref = Reference("vid", "distiller_zoo/VID.py")
from distiller_zoo.VID import VIDLoss  # noqa: E402  (from the checkout)

s, t = level_inputs(50)
modules = [VIDLoss(f_s.shape[1], f_t.shape[1], f_t.shape[1]) for f_s, f_t in zip(s, t)]
init = {f"init.{k}.log_scale": m.log_scale.detach().clone() for k, m in enumerate(modules)}
for k, m in enumerate(modules):
    parameters(51 + k, m)  # the regressor's weights (log_scale is set next)
    centre = -6.0 if k == 2 else init[f"init.{k}.log_scale"]
    g = torch.Generator().manual_seed(61 + k)
    with torch.no_grad():
        m.log_scale.copy_(centre + 0.5 * torch.randn(m.log_scale.shape, generator=g))
params = {f"{k}.{name}": p.detach().clone() for k, m in enumerate(modules) for name, p in m.named_parameters()}
loss = sum(m(f_s, f_t) for m, f_s, f_t in zip(modules, s, t))
named = {
    **{f"s{i}": f for i, f in enumerate(s)},
    **{f"{k}.{name}": p for k, m in enumerate(modules) for name, p in m.named_parameters()},
}
ref.write(
    {**{f"s{i}": f for i, f in enumerate(s)}, **{f"t{i}": f for i, f in enumerate(t)}, **params},
    {"loss": loss, **init, **gradients(loss, named)},
    {"init_pred_var": 5.0, "eps": 1e-5},
)
