"""Golden values of RepDistiller's similarity-preserving loss (``distiller_zoo/SP.py``, ``Similarity``) on one
pair of last-level maps of different shapes (the loop's ``[feat_s[-2]]``), and its gradient w.r.t. the
student's map. See ``_repdistiller.py`` for the command line."""

from _repdistiller import Reference, features, gradients

ref = Reference("sp", "distiller_zoo/SP.py")
from distiller_zoo.SP import Similarity  # noqa: E402  (from the checkout)

(s,) = features(20, (6, 8, 4, 4))
(t,) = (f.detach() for f in features(21, (6, 16, 2, 2)))
loss = sum(Similarity()([s], [t]))  # a 1-element tensor, as in RepDistiller's loop
ref.write({"s": s, "t": t}, {"loss": loss.reshape(()), **gradients(loss.sum(), {"s": s})})
