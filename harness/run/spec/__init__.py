"""The run specification: every option of a run declared once (:mod:`harness.run.spec.options`), with the
kinds of values they take (:mod:`harness.run.spec.kinds`)."""
