"""Golden values of RepDistiller's probabilistic knowledge transfer (``distiller_zoo/PKT.py``) on pooled
embeddings of different widths (the loop's ``feat[-1]``), and its gradient w.r.t. the student's embedding.
See ``_repdistiller.py`` for the command line."""

from _repdistiller import Reference, features, gradients

ref = Reference("pkt", "distiller_zoo/PKT.py")
from distiller_zoo.PKT import PKT  # noqa: E402  (from the checkout)

(s,) = features(30, (8, 16))
(t,) = (f.detach() for f in features(31, (8, 32)))
loss = PKT()(s, t)
ref.write({"s": s, "t": t}, {"loss": loss, **gradients(loss, {"s": s})})
