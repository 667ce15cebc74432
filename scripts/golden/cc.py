"""Golden values of RepDistiller's correlation congruence (``distiller_zoo/CC.py``, ``Correlation``) on pooled
embeddings passed through its two ``LinearEmbed`` modules (``models/util.py``; the student's 16 -> 8 and the
teacher's 32 -> 8, parameters set from a seed and stored as inputs), and the gradients w.r.t. the student's
embedding and all four embedding parameters. See ``_repdistiller.py`` for the command line."""

from _repdistiller import Reference, features, gradients, parameters

ref = Reference("cc", "distiller_zoo/CC.py")
from distiller_zoo.CC import Correlation  # noqa: E402  (from the checkout)
from models.util import LinearEmbed  # noqa: E402

FEAT_DIM = 8
(s,) = features(40, (6, 16))
(t,) = (f.detach() for f in features(41, (6, 32)))
embed_s, embed_t = LinearEmbed(16, FEAT_DIM), LinearEmbed(32, FEAT_DIM)
params = {
    **{f"embed_s.{k}": v for k, v in parameters(42, embed_s, 0.2).items()},
    **{f"embed_t.{k}": v for k, v in parameters(43, embed_t, 0.1).items()},
}
loss = Correlation()(embed_s(s), embed_t(t))
named = {
    "s": s,
    **{f"embed_s.{k}": p for k, p in embed_s.named_parameters()},
    **{f"embed_t.{k}": p for k, p in embed_t.named_parameters()},
}
ref.write({"s": s, "t": t, **params}, {"loss": loss, **gradients(loss, named)}, {"feat_dim": FEAT_DIM})
