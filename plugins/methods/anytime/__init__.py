"""``anytime``: multi-exit training and anytime / budgeted-batch evaluation (MSDNet). See ``method.py``. Declared
(registered) in ``plugins/methods/__init__.py``.
"""
